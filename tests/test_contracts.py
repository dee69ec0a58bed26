"""The plugin contract (IAxKitPlugin) is checked, and can fail; the engine's
handler contract (IRequestHandler) matches the Pipeline; shared note keys
are constants (axkit.notes)."""

import io
import os
import re
import shutil
import socket
import sys
import tempfile

from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyClass

import axkit
from axkit import notes
from axkit.config import Directive, string
from axkit.config.errors import ConfigErrors
from axkit.config.loader import load_string
from axkit.discovery import DoesNotProvide, check_plugin, discover, instantiate
from axkit.hooks import DECLINED, DONE, HOOKS
from axkit.interfaces import OPTIONAL, IAxKitPlugin, IRequestHandler
from axkit.testing import MemorySite

HERE = __name__


# -- plugins as docs/plugins.md has them --------------------------------------


class Plain:
    """A plain class: no interface declared, no directives."""

    name = "plain"

    def hook_response(self, request, conf):
        request.send(200, b"plain", "text/plain")
        return DONE


class Complete:
    """Every optional element, well formed."""

    name = "complete"
    directives = [Directive("CompleteGreeting", string, default="hi")]
    run_before = ("plain",)
    flushed = 0

    def wants_hook(self, hook, conf):
        return True

    def flush(self):
        Complete.flushed += 1

    def hook_fixup(self, request, conf, *extra):
        return DECLINED

    def hook_logging(self, event, conf):
        return DECLINED


# -- plugins that do not provide IAxKitPlugin ---------------------------------


class NoName:
    def hook_response(self, request, conf):
        return DECLINED


class EmptyName:
    name = ""


@implementer(IAxKitPlugin)
class DeclaredButNoName:
    """Declaring the interface excuses nothing."""

    directives = ()


class Misspelt:
    name = "misspelt"

    def hook_respone(self, request, conf):
        return DECLINED


class NotAHook:
    name = "not_a_hook"

    def hook_everything(self, request, conf):
        return DECLINED


class WrongArity:
    name = "wrong_arity"

    def hook_body_data(self, request, conf):  # body_data gets the data too
        return DECLINED


class HookNotCallable:
    name = "hook_not_callable"
    hook_fixup = "later"


class RunBeforeString:
    name = "run_before_string"
    run_before = "uri_to_file"  # would match by substring: "uri" in it


class DirectivesNotDirectives:
    name = "directives_not_directives"
    directives = ["ScriptAlias"]


class WantsHookWrongArity:
    name = "wants_hook_wrong_arity"

    def wants_hook(self, hook):
        return True


class FlushNeedsArguments:
    name = "flush_needs_arguments"

    def flush(self, how):
        pass


class NameSetByInit:
    """__init__ may set elements: the instance is what is checked."""

    def __init__(self):
        self.name = "name_set_by_init"


class PluginCheckTests(SynchronousTestCase):
    def refused(self, cls):
        """The config error for loading ``cls``, checked to be on line 2."""
        with self.assertRaises(ConfigErrors) as cm:
            load_string(f"Listen tcp:0\nPlugin {HERE}.{cls.__name__}\n", "site.conf")
        errors = cm.exception.errors
        self.assertEqual(len(errors), 1, errors)
        message = str(errors[0])
        self.assertTrue(
            message.startswith(
                f"site.conf:2: plugin {HERE}.{cls.__name__} does not provide IAxKitPlugin: "
            ),
            message,
        )
        return message.partition("IAxKitPlugin: ")[2]

    def test_missing_name(self):
        self.assertEqual(self.refused(NoName), "missing name (the name a Plugin line loads it by)")

    def test_empty_name(self):
        self.assertEqual(self.refused(EmptyName), "name must be a non-empty str, not ''")

    def test_declaring_the_interface_excuses_nothing(self):
        self.assertIn("missing name", self.refused(DeclaredButNoName))

    def test_misspelt_hook(self):
        self.assertEqual(
            self.refused(Misspelt), "hook_respone is not a hook (did you mean hook_response?)"
        )

    def test_unknown_hook(self):
        self.assertEqual(
            self.refused(NotAHook), "hook_everything is not a hook (see docs/hooks.md)"
        )

    def test_hook_with_the_wrong_arguments(self):
        self.assertEqual(
            self.refused(WrongArity),
            "hook_body_data(request, conf) cannot be called as hook_body_data(request, conf, data)",
        )

    def test_hook_that_is_not_a_method(self):
        self.assertEqual(
            self.refused(HookNotCallable),
            "hook_fixup is not a method (str); want hook_fixup(request, conf)",
        )

    def test_run_before_a_string(self):
        self.assertEqual(
            self.refused(RunBeforeString),
            "run_before must be a tuple of plugin names, not 'uri_to_file'",
        )

    def test_directives_not_directives(self):
        self.assertEqual(
            self.refused(DirectivesNotDirectives), "directives holds 'ScriptAlias', not a Directive"
        )

    def test_wants_hook_and_flush_signatures(self):
        self.assertEqual(
            self.refused(WantsHookWrongArity),
            "wants_hook(hook) cannot be called as wants_hook(hook, conf)",
        )
        self.assertEqual(
            self.refused(FlushNeedsArguments), "flush(how) cannot be called as flush()"
        )

    def test_every_problem_is_named(self):
        class Many:
            run_before = "x"

            def hook_fixups(self, request, conf):
                pass

        problems = check_plugin(Many())
        self.assertEqual(len(problems), 3, problems)

    def test_plain_classes_per_the_docs_load(self):
        site = MemorySite(f"Plugin {HERE}.Plain\n")
        self.addCleanup(site.close)
        self.assertEqual(site.get("/").body, b"plain")
        plugin = site.config.plugins[f"{HERE}.Plain".lower()]
        self.assertTrue(IAxKitPlugin.providedBy(plugin))
        self.assertEqual(tuple(plugin.directives), ())

    def test_every_optional_element_well_formed_loads(self):
        self.assertEqual(check_plugin(Complete()), [])
        plugin = instantiate(Complete)
        self.assertTrue(IAxKitPlugin.providedBy(plugin))
        site = MemorySite(f"Plugin {HERE}.Plain\nPlugin {HERE}.Complete\n")
        self.addCleanup(site.close)
        self.assertEqual(site.get("/").body, b"plain")

    def test_the_instance_is_checked(self):
        self.assertEqual(instantiate(NameSetByInit).name, "name_set_by_init")

    def test_every_bundled_plugin_provides_it(self):
        for name, info in sorted(discover().items()):
            plugin = info.load()()
            self.assertEqual(check_plugin(plugin), [], name)

    def test_refused_before_anything_listens(self):
        # `twistd axkit --config` with a broken plugin: refused with file:line,
        # exit status 1, and the Listen port never opened.
        from axkit import tap

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        path = os.path.join(folder, "site.conf")
        with open(path, "w") as f:
            f.write(f"Listen tcp:{port}:interface=127.0.0.1\nPlugin {HERE}.Misspelt\n")
        options = tap.Options()
        options.parseOptions(["--config", path])
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as cm:
            tap.makeService(options)
        self.assertEqual(cm.exception.code, 1)
        self.assertIn(
            f"{path}:2: plugin {HERE}.Misspelt does not provide IAxKitPlugin: "
            "hook_respone is not a hook (did you mean hook_response?)",
            stderr.getvalue(),
        )
        with socket.socket() as s:  # nobody listens there
            self.assertNotEqual(s.connect_ex(("127.0.0.1", port)), 0)

    def test_does_not_provide_is_a_config_error(self):
        with self.assertRaises(DoesNotProvide):
            instantiate(NoName)


class InterfaceTests(SynchronousTestCase):
    def test_every_hook_is_declared(self):
        declared = [n[5:] for n in IAxKitPlugin.names() if n.startswith("hook_")]
        self.assertEqual(sorted(declared), sorted(HOOKS))

    def test_only_name_is_required(self):
        required = [
            n for n in IAxKitPlugin.names() if not IAxKitPlugin[n].queryTaggedValue(OPTIONAL)
        ]
        self.assertEqual(required, ["name"])

    def test_everything_the_core_looks_up_on_a_plugin_is_declared(self):
        # getattr(plugin, "x") / hasattr(plugin, "x") anywhere in the core:
        # each "x" must be an element of IAxKitPlugin (or a Python one).
        root = os.path.dirname(axkit.__file__)
        looked_up = set()
        for folder, _, files in os.walk(root):
            if os.path.basename(folder) == "plugins":
                continue
            for name in files:
                if name.endswith(".py"):
                    with open(os.path.join(folder, name), encoding="utf-8") as f:
                        looked_up.update(
                            re.findall(
                                r"(?:getattr|hasattr)\((?:plugin|other|cls), \"(\w+)\"\s*[,)]",
                                f.read(),
                            )
                        )
        self.assertTrue({"name", "run_before", "wants_hook", "flush"} <= looked_up, looked_up)
        undeclared = {n for n in looked_up if n not in IAxKitPlugin and not n.startswith("__")}
        self.assertEqual(undeclared, set())

    def test_the_pipeline_is_a_request_handler(self):
        from axkit.pipeline import Pipeline

        self.assertTrue(verifyClass(IRequestHandler, Pipeline, tentative=True))

    def test_what_the_engine_calls_is_declared(self):
        path = os.path.join(os.path.dirname(axkit.__file__), "http", "connection.py")
        with open(path, encoding="utf-8") as f:
            called = set(re.findall(r"\bhandler\.(\w+)\(", f.read()))
        self.assertTrue(called, "no handler calls found in axkit/http/connection.py")
        self.assertEqual({n for n in called if n not in IRequestHandler}, set())


class NoteKeyTests(SynchronousTestCase):
    def test_values_never_change(self):
        # Admins log them (%{axkit.encoding}n) and plugins outside axkit use
        # them (docs/hooks.md): renaming one breaks both.
        self.assertEqual(
            {k: v for k, v in vars(notes).items() if k.isupper()},
            {
                "ENCODING": "axkit.encoding",
                "HEADER_OPS": "axkit.header_ops",
                "HANDLER_FIELDS": "axkit.handler_fields",
                "X_SENDFILE": "axkit.x_sendfile",
                "ERROR_HEADERS": "axkit.error_headers",
                "ERROR_DOCUMENT": "axkit.error_document",
                "ERROR_STATUS": "axkit.error_status",
                "TRACE": "axkit.trace",
                "REDIRECTED_FROM": "redirected_from",
                "CGI_TARGET": "cgi.target",
                "CGI_REDIRECTS": "cgi.redirects",
                "CGI_CONNECTION_ENV": "cgi.env",
            },
        )

    def test_each_is_documented(self):
        import ast

        with open(notes.__file__, encoding="utf-8") as f:
            body = ast.parse(f.read()).body
        documented = set()
        for statement, following in zip(body, body[1:], strict=False):
            if (
                isinstance(statement, ast.Assign)
                and isinstance(following, ast.Expr)
                and isinstance(following.value, ast.Constant)
            ):
                documented.add(statement.targets[0].id)
        self.assertEqual(documented, {k for k in vars(notes) if k.isupper()})
