"""SSL > Entrust > Manage > Credentials: Entrust ECS API accounts and the client built from them."""
