"""`sweepscope mcp`: the store served to AI agents over the Model Context Protocol (MCP).

An agent client (Claude Code, Claude Desktop, Cursor, ...) launches `sweepscope mcp` and
talks to it over stdio; docs/agents.md says how to add it to one. The tools themselves are
runner.agent_tools; this module only serves them. Each answer goes back as compact JSON
text (what the agent reads, and what the size bounds apply to); a mistake the agent can fix
(an unknown sweep id, a trial number the sweep lacks) goes back as a tool error whose
message says what to do.

Control is off unless the person who starts the server passes --allow-control: an agent
that reads results should not spend compute or end someone's sweep on its own say. Without
it the control tools are not listed at all.

The CLI imports this module to register the command, so it imports nothing heavy at the
top: the `mcp` package (an optional extra), pandas and scipy load when the server starts.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from runner.errors import SweepscopeError
from runner.redact import redact

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from runner.store import Store

__all__ = ["CONTROL_TOOLS", "READ_TOOLS", "build_server", "cmd_mcp", "register"]

EXIT_INTERRUPTED = 130  # as the CLI's
# The tools by name; the control ones are listed only with --allow-control.
READ_TOOLS = ("list_sweeps", "summarize_sweep", "read_curves")
CONTROL_TOOLS = ("stop_sweep", "stop_trial", "launch_sweep", "extend_sweep")
INSTRUCTIONS = (
    "sweepscope hyperparameter sweeps on Ray Tune. Start with list_sweeps, then "
    "summarize_sweep for a sweep's best configurations (with seeds: ranked by the mean over "
    "seeds, with a 95% interval; the noise floor: two single runs closer than it may differ "
    "by seed noise alone) or best trials (without seeds). Trials are numbered 1..N within "
    "their sweep; read_curves takes those numbers."
)


# -- the server and the command -----------------------------------------------------------------
def build_server(store: Store, *, url: str, allow_control: bool = False) -> MCPServer:
    """The MCP server over `store`: the read tools, and the control tools only with
    `allow_control` (without it they are not listed, so an agent cannot call them).

    Raises:
        SweepscopeError: the `mcp` package is not installed (says how to install it).
    """
    try:
        from mcp.server.mcpserver import MCPServer
        from mcp.server.mcpserver.exceptions import ToolError
        from mcp.types import ToolAnnotations
    except ImportError as exc:
        raise SweepscopeError(
            "sweepscope mcp needs the `mcp` package. Fix: pip install 'sweepscope[mcp]'."
        ) from exc
    from runner.agent_tools import AgentTools, compact_json

    tools = AgentTools(store, url=url)
    server = MCPServer(
        "sweepscope", instructions=INSTRUCTIONS, version=_version(), log_level="WARNING"
    )

    def add(method: Callable[..., dict[str, Any]], hints: ToolAnnotations) -> None:
        @functools.wraps(method)
        def tool(**kwargs: Any) -> str:
            try:
                return compact_json(method(**kwargs))
            except SweepscopeError as exc:  # what the agent can fix: the message says how
                raise ToolError(redact(str(exc))) from exc

        # Unstructured: the compact JSON text is what the agent reads, and what is bounded.
        server.add_tool(tool, annotations=hints, structured_output=False)

    for name in READ_TOOLS:
        add(getattr(tools, name), ToolAnnotations(read_only_hint=True, open_world_hint=False))
    if allow_control:
        for name in CONTROL_TOOLS:
            stops = name.startswith("stop")
            hints = ToolAnnotations(
                read_only_hint=False, destructive_hint=stops, open_world_hint=not stops
            )
            add(getattr(tools, name), hints)
    return server


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser], store_help: str) -> None:
    """Add `sweepscope mcp` to the CLI's subcommands."""
    mcp = sub.add_parser(
        "mcp",
        help="serve the store to AI agents over the Model Context Protocol (stdio)",
        description="Serve the store to an AI agent over MCP on stdin/stdout: an MCP client "
        "launches this command (see docs/agents.md). Read tools only, unless --allow-control.",
    )
    mcp.add_argument("--store", help=store_help)
    mcp.add_argument(
        "--allow-control",
        action="store_true",
        help="also offer tools that stop sweeps and trials and launch or extend sweeps "
        "(they run `sweepscope run` / `extend` on this machine)",
    )
    mcp.set_defaults(func=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve the store over stdio until the client closes the connection."""
    from runner.store import default_url, open_store

    url = args.store or default_url()
    with open_store(url) as store:  # a URL holding no store is refused here, not per call
        server = build_server(store, url=url, allow_control=args.allow_control)
        tools = "read and control tools" if args.allow_control else "read-only tools"
        # stderr: stdout carries the protocol. Clients keep this in their log of the server.
        print(
            f"sweepscope mcp: serving {store.url} over stdio ({tools}); an MCP client "
            "launches this command (docs/agents.md)",
            file=sys.stderr,
            flush=True,
        )
        try:
            server.run("stdio")
        except KeyboardInterrupt:  # started by hand in a terminal, and ended with Ctrl-C
            return EXIT_INTERRUPTED
    return 0


# -- small helpers -------------------------------------------------------------------------------
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sweepscope")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return ""
