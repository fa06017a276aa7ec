"""CA connectors: the one interface the orders feature uses to talk to any certificate authority.

``base`` defines the interface in the orders feature's terms (requests, orders, capabilities and
three neutral kinds of error); ``entrust`` implements it over the ECS client. A second CA adds a
module here and an entry in ``registry``, not a second orders feature.
"""
