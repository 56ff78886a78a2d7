"""A protected app for the browser suite: one page showing the path it was asked for
and the identity headers it received (Remote-User, Remote-Groups, Remote-Email)."""
import html
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class App(BaseHTTPRequestHandler):
    def do_GET(self):
        shown = {
            name: self.headers.get(name, "(none)")
            for name in ("Remote-User", "Remote-Groups", "Remote-Email")
        }
        rows = "".join(
            f'<dt>{name}</dt><dd data-header="{name}">{html.escape(value)}</dd>'
            for name, value in shown.items()
        )
        body = (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<title>Protected app</title></head><body><main>"
            f"<h1>Protected app</h1><p data-path>{html.escape(self.path)}</p>"
            f"<dl>{rows}</dl></main></body></html>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), App).serve_forever()
