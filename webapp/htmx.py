"""htmx helpers: detect an htmx request, render a whole page or one named block of it."""

from __future__ import annotations

from flask import Response, current_app, render_template, request


def is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get(
        "HX-History-Restore-Request"
    )


def render_block(template_name: str, block: str, **context) -> str:
    """Render one ``{% block %}`` of a page template with the page's full context."""
    app = current_app
    context.setdefault("partial", True)  # what a page shows once only when loaded as a whole
    app.update_template_context(context)
    template = app.jinja_env.get_template(template_name)
    return "".join(template.blocks[block](template.new_context(context)))


def render(template_name: str, block: str | None = None, **context) -> str:
    """The full page for a normal request; only ``block`` for an htmx request (when given)."""
    if block and is_htmx():
        return render_block(template_name, block, **context)
    return render_template(template_name, **context)


def redirect(url: str, status: int = 303) -> Response:
    """Redirect that works for both: htmx follows HX-Redirect, a browser follows Location."""
    if is_htmx():
        resp = Response(status=204)
        resp.headers["HX-Redirect"] = url
        return resp
    resp = Response(status=status)
    resp.headers["Location"] = url
    return resp


def trigger(response: Response, event: str) -> Response:
    response.headers["HX-Trigger"] = event
    return response
