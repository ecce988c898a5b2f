"""One plain ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware): bodies
over the size limit get a 413 before any parsing, and every request is counted and timed per
route and run for ``/metrics``."""
from __future__ import annotations

import json
import logging
import time

from starlette.routing import compile_path

MAX_LOGGED_PATH = 200  # characters of a request path a log line shows


def route_template(scope) -> str:
    """The route a request matched, as its template (``/v1/retrieve``), else ``unmatched``: a
    raw path as a metric label gives ``/metrics`` a series for every URL anyone sends. Before
    routing (a body refused for its size) the path is matched against the app's templates."""
    route = scope.get("route")
    if route is not None:
        return getattr(route, "path", "unmatched")
    app = scope.get("app")
    if app is None:
        return "unmatched"
    patterns = getattr(app.state, "route_patterns", None)
    if patterns is None:
        patterns = app.state.route_patterns = [(compile_path(path)[0], path) for path in _paths(app.router.routes)]
    path = scope.get("path", "")
    return next((template for pattern, template in patterns if pattern.match(path)), "unmatched")


def _paths(routes):
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        if included is not None:
            yield from _paths(included.routes)
        elif isinstance(getattr(route, "path", None), str):
            yield route.path


def logged_path(path) -> str:
    path = str(path or "")
    return path if len(path) <= MAX_LOGGED_PATH else path[:MAX_LOGGED_PATH] + "..."


class LimitAndMeasure:
    def __init__(self, app, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = int(max_body_bytes)

    async def _reject(self, scope, send, status: int, detail: str) -> None:
        logging.getLogger("tt_tf.serving").warning("rejected %s %s -> %d: %s", scope.get("method"),
                                                   logged_path(scope.get("path")), status, detail)
        service = getattr(scope["app"].state, "service", None) if scope.get("app") else None
        if service is not None:
            service.metrics.inc("tt_tf_rejected_requests_total", route=route_template(scope), code=status)
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        limit = self.max_body_bytes
        too_big = f"request body over {limit} bytes"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await self._reject(scope, send, 413, too_big)
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            # read the body here (bounded) and hand it on: a chunked upload cannot exceed the limit
            chunks, total = [], 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunk = message.get("body", b"")
                total += len(chunk)
                if total > limit:
                    return await self._reject(scope, send, 413, too_big)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            replayed = False

            async def receive_body():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                return await receive()
        else:
            receive_body = receive
        status = {"code": 500}

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive_body, send_and_note)
        finally:
            service = getattr(scope.get("app").state, "service", None) if scope.get("app") else None
            if service is not None:
                route = route_template(scope)
                run_id = service.run_id or "none"
                service.metrics.observe("tt_tf_request_seconds", time.perf_counter() - started, route=route,
                                        run_id=run_id)
                service.metrics.inc("tt_tf_requests_total", route=route, run_id=run_id, code=status["code"])
