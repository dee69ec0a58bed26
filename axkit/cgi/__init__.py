"""CGI/1.1 (RFC 3875), one module per concern.

* ``mapping``  -- which URL runs which program (ScriptAlias, AddHandler);
* ``environ``  -- the meta-variables a script sees (§4.1);
* ``response`` -- reading the script's header block (§6);
* ``spool``    -- a chunked request body, kept until its length is known;
* ``spawn``    -- starting the program in a process group of its own, off the reactor's toes;
* ``run``      -- one request <-> one process: body in, response out, faults.

The plugin that ties them to the hooks is ``axkit.plugins.cgi``.
"""
