"""The database: engine setup, schema, migrations and one store per service."""
