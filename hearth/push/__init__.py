"""Push: rules, notification counts, the notifications list and HTTP pushers.

- `rules.py`: the push rule model and the server-default ruleset, as data;
- `evaluator.py`: pure condition matching (no I/O);
- `rules_service.py`: per-user rules (CRUD, the `m.push_rules` account data);
- `service.py`: actions for every new event for every local member, counts;
- `pusher.py`: HTTP pushers and delivery to push gateways with retries.
"""
