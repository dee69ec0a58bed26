"""Sending files: the code behind ``request.send_file`` and ``serve_file``.

* ``cache``      -- what is known of a file (validators, small files' bytes),
                    checked against a fresh stat on every use;
* ``respond``    -- one file as a response: conditional requests, ranges,
                    HEAD, on-the-fly gzip, the producer that sends it;
* ``producers``  -- zero-copy ``sendfile``, a bounded block producer (TLS),
                    gzip on the fly;
* ``ranges``     -- Range parsing and multipart/byteranges framing;
* ``validators`` -- ETag/Last-Modified and the RFC 9110 §13.2.2 evaluation.

Nothing here knows a plugin: X-Sendfile, a WSGI ``file_wrapper``, a cached
XSLT page and ``serve_file`` all come through ``request.send_file`` or
``respond.respond_file``.
"""
