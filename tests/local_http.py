"""A local HTTP server for the download tests (127.0.0.1 only; no test touches the network)."""

import contextlib
import http.server
import threading


@contextlib.contextmanager
def serving(answer):
    """A server on 127.0.0.1 while the block runs, calling ``answer(handler)`` for each GET to write the whole
    response, however broken; yields its base URL (``http://127.0.0.1:PORT/``)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            answer(self)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True  # a stalled answer does not hold the test at the end
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()  # quick to shut down
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def sending(body: bytes, length: int | None = None, content_type: str = "application/octet-stream"):
    """An answer: 200, ``body``, a Content-Length of ``length`` if given (it may lie), then the connection closes."""

    def answer(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        if length is not None:
            handler.send_header("Content-Length", str(length))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body)
        handler.close_connection = True

    return answer
