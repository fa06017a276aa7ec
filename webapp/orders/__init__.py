"""SSL > Entrust: the CA orders (import, order, status, lifecycle actions)."""
