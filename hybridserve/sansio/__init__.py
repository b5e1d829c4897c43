"""Sans-IO HTTP/1.1: bytes in, events out; responses in, bytes out. No sockets, loops or clocks."""
