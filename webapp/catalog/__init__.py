"""SSL > Entrust > Manage > Organizations, Domains, Products: the mirror synced from ECS."""
