"""The templates' url_for remembers URLs, and gives the very URL Flask builds for each request."""

import flask

from webapp import urls

CALLS = [
    ("dashboard.index", {}),
    ("static", {"filename": "css/app.css"}),
    ("orders.index", {"q": "a b&c", "sort": "id", "dir": "asc"}),
    ("orders.index", {"page": 1}),
    ("orders.index", {"page": True}),
    ("orders.index", {"page": 1.0}),
    ("orders.index", {"_anchor": "results", "status": "ISSUED"}),
    ("orders.index", {"_external": True}),
    (".index", {}),
    ("orders.index", {"status": ["ISSUED", "PENDING"]}),
]


def test_each_url_is_the_one_flask_builds_for_that_request(app):
    urls._built.cache_clear()
    for _ in range(2):  # built, then remembered
        for base_url in ("http://localhost/", "http://localhost/certdesk/", "https://cd.example/"):
            for path in ("/certificates/", "/entrust/"):
                with app.test_request_context(path, base_url=base_url):
                    for endpoint, values in CALLS:
                        expected = flask.url_for(endpoint, **values)
                        assert urls.url_for(endpoint, **values) == expected, (base_url, path)


def test_a_url_is_built_once_and_then_remembered(app):
    urls._built.cache_clear()
    with app.test_request_context("/"):
        for _ in range(3):
            urls.url_for("orders.index", sort="id")
    info = urls._built.cache_info()
    assert (info.misses, info.hits) == (1, 2)


def test_pages_use_it(app):
    assert app.jinja_env.globals["url_for"] is urls.url_for
    urls._built.cache_clear()
    client = app.test_client()
    client.get("/auth/login")
    assert urls._built.cache_info().currsize > 0
