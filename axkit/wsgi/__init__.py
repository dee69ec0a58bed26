"""WSGI (PEP 3333) applications served in-process by the ``wsgi`` plugin.

The reactor thread only moves bytes; applications run in their own thread
pool (``pool``).  Between the two, one ``Exchange`` per request carries the
request body in (``input``), and the response out in order with
backpressure (``exchange``); ``response`` is the application side of
PEP 3333 (start_response, write, the iterable and its close()),
``environ`` builds the environ dict and ``loader`` finds the application.
"""
