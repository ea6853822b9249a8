"""zuora-sandbox: a local emulator of the Zuora REST endpoints used for Workflow sync.

See the package README for the admin API and the fault knobs. Never expose a sandbox beyond
loopback: its ``/_sandbox`` admin API has no authentication.
"""

from .app import create_app, create_fast_app
from .definition_book import DefinitionBook, EndpointFaults
from .definitions import EditSummary
from .demo import DEMO_TENANTS, DemoTenant, add_demo_tenants
from .faults import Faults
from .generator import generate_workflows
from .server import SandboxServer, run_sandbox
from .state import SandboxState, Stats, Tenant

__all__ = [
    "DEMO_TENANTS",
    "DefinitionBook",
    "DemoTenant",
    "EditSummary",
    "EndpointFaults",
    "Faults",
    "SandboxServer",
    "SandboxState",
    "Stats",
    "Tenant",
    "add_demo_tenants",
    "create_app",
    "create_fast_app",
    "generate_workflows",
    "run_sandbox",
]
