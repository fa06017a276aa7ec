"""Small helpers shared by tests."""

HTMX = {"HX-Request": "true"}
PASSWORD = "correct horse battery"
