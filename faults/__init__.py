"""The fault suite: the production layout on its own PostgreSQL and Redis, one fault at a
time during a burst of buyers (README, "Fault suite")."""
