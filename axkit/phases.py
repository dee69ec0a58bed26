"""The steps of a request, and which of them a scope visits (its plan).

A request walks these steps, in this order (axkit.pipeline runs them):

====================  ======================================================
``pre_request``       hook, in the <Server>'s own scope (its Locations are
                      not applied yet: a plugin may still rewrite the path)
``admit``             core: TRACE and CONNECT refused, ``OPTIONS *``
                      answered, the path normalised (400), the request's
                      scope resolved (its <Location>s), LimitRequestBody
                      (413), ``100 Continue`` when a body_data plugin applies
``post_read_request`` hook
``uri_translation``   hook
``files``             core: the <Files> sections matching the mapped file
``mime_map`` ...      hooks, to ``response``
``end``               core: nobody answered (404, 405, 501; OPTIONS: 204)
====================  ======================================================

Each merged scope (``axkit.config.scopes.Resolved``) carries its hook
chains and its *plan*: for each position in STEPS, the step to run from
there.  The core steps are always run; a hook is run only when some plugin
of the scope hooks it (and its ``wants_hook``, if it has one, agrees), so
the phases nobody hooks cost nothing.
"""

from axkit.hooks import HOOKS, REQUEST_PHASES

STEPS = (
    ("pre_request", "admit", "post_read_request", REQUEST_PHASES[0], "files")
    + REQUEST_PHASES[1:]
    + ("end",)
)

# Positions in STEPS.
PRE_REQUEST = STEPS.index("pre_request")
ADMIT = STEPS.index("admit")
POST_READ_REQUEST = STEPS.index("post_read_request")
FIRST_PHASE = STEPS.index(REQUEST_PHASES[0])  # uri_translation
FILES = STEPS.index("files")
RESPONSE = STEPS.index("response")
END = STEPS.index("end")

CORE_STEPS = frozenset((ADMIT, FILES, END))


def hook_chains(plugins, conf):
    """Per hook, the ``(plugin, bound method)`` pairs of ``plugins`` (in
    the order they run) that take part in it in a scope with ``conf``.

    A plugin may leave a hook out of a scope where it has nothing to do
    (its directives unused) with ``wants_hook(hook, conf)`` returning
    false: the phase is then not visited at all for its sake."""
    chains = {}
    for hook in HOOKS:
        chain = []
        for plugin in plugins:
            method = getattr(plugin, "hook_" + hook, None)
            if method is not None:
                wants = getattr(plugin, "wants_hook", None)
                if wants is not None and not wants(hook, conf):
                    continue
                chain.append((plugin, method))
        chains[hook] = tuple(chain)
    return chains


def plan(chains):
    """The plan of a scope with these hook chains: a tuple as long as
    STEPS whose item ``i`` is the first step at or after position ``i`` to
    run, as ``(after, name, chain, method)``: ``after`` is the position
    that follows the step (its own plus one: where the walk goes on, or
    resumes when the step returned a Deferred); ``chain`` is None for a
    core step; ``method`` is the hook method itself when one plugin has the
    hook (the pipeline then calls it directly), else None."""
    steps = [None] * len(STEPS)
    following = None
    for position in range(len(STEPS) - 1, -1, -1):
        name = STEPS[position]
        if position in CORE_STEPS:
            following = (position + 1, name, None, None)
        else:
            chain = chains[name]
            if chain:
                following = (position + 1, name, chain, chain[0][1] if len(chain) == 1 else None)
        steps[position] = following
    return tuple(steps)
