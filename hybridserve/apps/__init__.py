"""App adapters: ASGI on the event loop, WSGI on a thread pool, both behind one Channel."""
