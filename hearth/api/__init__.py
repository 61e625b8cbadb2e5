"""HTTP only: parse and validate requests, call a service, shape the response."""
