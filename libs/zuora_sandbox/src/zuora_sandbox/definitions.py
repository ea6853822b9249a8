"""Deterministic, realistic workflow definitions: the ``tasks`` and ``linkages`` of an export.

Shapes follow zuora-workflow-export.md (§1.3, §1.4, §6) and the spec's export example: snake_case
task keys with the export-only ``css``/``priority``/``assignment``/... keys, linkage types from
Zuora's hook catalogue (``Start`` or an event name on the entry edge, ``Success``/``Failure``,
``True``/``False``, ``For Each``/``Complete``, ``Case_n``/``Case_Else``, ``Approve``/``Reject``),
merges, an occasional cycle and orphan task. Everything is a pure function of a seed, so a
definition can be regenerated instead of stored.
"""

from __future__ import annotations

import copy
import itertools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Task = dict[str, Any]
Linkage = dict[str, Any]

MAX_TASKS = 60
#: Task ids are ``version_id * TASK_ID_STRIDE + index``: unique per tenant, stable per version.
TASK_ID_STRIDE = 100

EVENTS = (
    "InvoicePosted",
    "PaymentProcessed",
    "PaymentDeclined",
    "SubscriptionCreated",
    "AccountCreated",
    "OrderProcessed",
)
_OBJECTS = ("Account", "Invoice", "Subscription", "Payment", "Contact", "Usage", "CreditMemo")
_FIELDS = {
    "Account": ("Id", "AccountNumber", "Balance", "Currency", "Status"),
    "Invoice": ("Id", "InvoiceNumber", "Balance", "DueDate", "Status"),
    "Subscription": ("Id", "Name", "Status", "TermEndDate", "AutoRenew"),
    "Payment": ("Id", "Amount", "Status", "EffectiveDate", "GatewayResponse"),
    "Contact": ("Id", "FirstName", "LastName", "WorkEmail", "Country"),
    "Usage": ("Id", "Quantity", "UOM", "StartDateTime", "SubscriptionNumber"),
    "CreditMemo": ("Id", "MemoNumber", "Amount", "Status", "ReasonCode"),
}


def _pick(rng: random.Random, seq: Sequence[Any]) -> Any:
    """``rng.choice`` at a third of its cost (definitions are generated on every cache miss)."""
    return seq[int(rng.random() * len(seq))]


def _query_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    name = obj or "Account"
    fields = {f: "true" for f in rng.sample(_FIELDS[name], 3)}
    return {
        "fields": {name: fields},
        "where_clause": _pick(rng, ("Status = 'Posted'", "Balance > 0", "", "AutoRenew = true")),
        "placement": "first",
        "zero_query_proceed": _pick(rng, ("true", "false")),
        "strict_variables": "true",
    }


def _callout_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    host = _pick(rng, ("netsuite.example.com", "hooks.slack.example", "api.salesforce.example"))
    return {
        "authorization": {"type": _pick(rng, ("none", "basic", "oauth2"))},
        "body_type": "raw",
        "headers": [{"key": "Content-Type", "value": "application/json"}],
        "include_response_code": "true",
        "method": _pick(rng, ("GET", "POST", "PUT")),
        "raw_body": "{{Data.Invoice | to_json}}",
        "retry_rules": {"current_retry_count": "0", "retry_count": "3", "retry_window": "30"},
        "strict_variables": "true",
        "url": f"https://{host}/v1/{_pick(rng, ('invoices', 'events', 'accounts'))}",
        "validate_response": "false",
        "validation": {"status_codes": ["", "200"], "zuora_call": "false"},
    }


def _email_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    return {
        "to": _pick(rng, ("{{Data.BillToContact.WorkEmail}}", "billing-ops@example.com")),
        "cc": "",
        "subject": _pick(rng, ("Your invoice is ready", "Payment failed", "Action required")),
        "template": _pick(rng, ("invoice_ready", "dunning_notice", "payment_failed")),
        "attachments": [],
        "strict_variables": "true",
    }


def _if_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    condition = _pick(
        rng,
        (
            "{{Data.Invoice.Balance}} > 0",
            "{{Data.Account.Currency}} == 'EUR'",
            "{{Data.Subscription.AutoRenew}} == true",
        ),
    )
    return {"if_clause": condition, "strict_variables": "true"}


def _iterate_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    return {"iterate_over": f"Data.{obj or 'Invoice'}", "concurrent_limit": str(_pick(rng, (1, 5)))}


def _case_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    return {"case_variable": _pick(rng, ("Data.Account.Region", "Data.Invoice.Status"))}


def _approval_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    return {"approvers": ["finance-leads"], "due_in_days": str(_pick(rng, (1, 3, 7)))}


def _delay_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    return {"delay": str(_pick(rng, (60, 900, 3600, 86400))), "unit": "seconds"}


def _export_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    name = obj or "Invoice"
    return {"object": name, "format": _pick(rng, ("csv", "json")), "fields": list(_FIELDS[name])}


def _write_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    name = obj or "Account"
    field_name = _pick(rng, _FIELDS[name][1:])
    return {"fields": {field_name: "{{Data.Liquid.Value}}"}, "strict_variables": "true"}


def _transform_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    return {"jsonata": _pick(rng, ("$.Invoice", "$sum(Data.Invoice.Balance)", "$.Account.Id"))}


def _generic_params(rng: random.Random, obj: str | None) -> dict[str, Any]:
    return {"strict_variables": _pick(rng, ("true", "false"))}


@dataclass(frozen=True)
class ActionKind:
    """One task type of the catalogue: its hooks (outgoing linkage types) and how it looks."""

    action_type: str
    weight: int
    hooks: tuple[str, ...]
    names: tuple[str, ...]
    params: Callable[[random.Random, str | None], dict[str, Any]] = _generic_params
    objects: tuple[str, ...] = ()
    call_type: str = "SOAP"


CATALOGUE: tuple[ActionKind, ...] = (
    ActionKind(
        "Query",
        14,
        ("Success",),
        ("Query unpaid invoices", "Fetch account", "Find expiring subscriptions", "Load usage"),
        _query_params,
        _OBJECTS,
    ),
    ActionKind(
        "Callout",
        12,
        ("Success",),
        ("Post to NetSuite", "Notify Slack", "Call Salesforce", "Call Echo"),
        _callout_params,
    ),
    ActionKind(
        "Email",
        10,
        ("Success",),
        ("Email customer", "Notify finance", "Send dunning notice", "Email CSM"),
        _email_params,
    ),
    ActionKind(
        "If", 9, ("True", "False"), ("Balance > 0?", "EU entity?", "Auto-renew?"), _if_params
    ),
    ActionKind(
        "Iterate",
        6,
        ("For Each", "Complete"),
        ("For each invoice", "For each account", "Loop over usage"),
        _iterate_params,
        ("Invoice", "Account", "Usage"),
    ),
    ActionKind("Logic::Case", 4, (), ("Route by region", "Route by status"), _case_params),
    ActionKind(
        "Approval",
        3,
        ("Approve", "Reject"),
        ("Finance approval", "Manager sign-off"),
        _approval_params,
    ),
    ActionKind("Delay", 4, ("Success",), ("Wait 1 hour", "Wait for settlement"), _delay_params),
    ActionKind(
        "Export",
        4,
        ("Success",),
        ("Export invoices", "Export journal entries"),
        _export_params,
        ("Invoice", "Payment", "Account"),
    ),
    ActionKind(
        "Update",
        5,
        ("Success",),
        ("Update account", "Flag invoice", "Set subscription field"),
        _write_params,
        ("Account", "Invoice", "Subscription"),
        "REST",
    ),
    ActionKind(
        "Create",
        3,
        ("Success",),
        ("Create credit memo", "Create contact"),
        _write_params,
        ("CreditMemo", "Contact"),
        "REST",
    ),
    ActionKind(
        "Logic::JSONTransform",
        3,
        ("Success",),
        ("Shape payload", "Sum balances"),
        _transform_params,
    ),
    ActionKind("Logic::Lambda", 1, ("Success",), ("Compute late fee",)),
    ActionKind("CustomObject::Query", 2, ("Success",), ("Read contract terms",)),
    ActionKind("Billing::BillRun", 1, ("Success",), ("Run bill run",)),
    ActionKind("Payment::PaymentRun", 1, ("Success",), ("Collect payments",)),
    ActionKind("Notifications::SMS", 1, ("Success",), ("Text account owner",)),
    ActionKind("Upload::SFTP", 1, ("Success",), ("Upload to bank SFTP",)),
    ActionKind("WriteOff", 1, ("Success",), ("Write off balance",)),
    ActionKind("Reporting::RunReport", 1, ("Success",), ("Run AR aging report",)),
    # Types outside the spec's enum (zuora-workflow-export.md §1.3: E5 lists 70): free text.
    ActionKind("Logic::Merge", 1, ("Success",), ("Merge branches",)),
    ActionKind("AsynchronousCallout", 1, ("Success",), ("Async callout to ERP",)),
)
_CUM_WEIGHTS = list(itertools.accumulate(kind.weight for kind in CATALOGUE))


@dataclass(frozen=True)
class WorkflowTraits:
    """What stays the same across a workflow's versions: entry event, retention, canvas start."""

    event: str | None
    delete_ttl: int
    call_type: str | None


def workflow_traits(key: str) -> WorkflowTraits:
    rng = random.Random(f"traits:{key}")  # noqa: S311 - test data
    event = _pick(rng, EVENTS) if rng.random() < 0.15 else None
    return WorkflowTraits(
        event=event,
        delete_ttl=_pick(rng, (30, 60, 60, 90)),
        call_type=_pick(rng, (None, None, "BATCH", "SYNC")),
    )


@dataclass
class _Builder:
    rng: random.Random
    base_id: int
    tasks: list[Task] = field(default_factory=list)
    linkages: list[Linkage] = field(default_factory=list)
    #: Unconnected outgoing hooks: (source task id, linkage type, column, row).
    open_hooks: list[tuple[int, str, int, int]] = field(default_factory=list)

    def task(self, index: int, parent: int | None, col: int, row: int) -> Task:
        rng = self.rng
        kind = rng.choices(CATALOGUE, cum_weights=_CUM_WEIGHTS)[0]
        obj = _pick(rng, kind.objects) if kind.objects else None
        hooks = kind.hooks
        if kind.action_type == "Logic::Case":
            hooks = (*(f"Case_{n}" for n in range(1, rng.randint(2, 4) + 1)), "Case_Else")
        if rng.random() < 0.25:
            hooks = (*hooks, "Failure")
        task_id = self.base_id + index
        task: Task = {
            "action_type": kind.action_type,
            "assignment": [],
            "call_type": kind.call_type,
            "concurrent_limit": _pick(rng, (9999999, 9999999, 9999999, 10, 1)),
            "css": {"left": f"{470 + 240 * (col - 1)}px", "top": f"{160 + 120 * row}px"},
            "error": None,
            "error_class": None,
            "error_details": None,
            "id": task_id,
            "iterate_row_reference": None,
            "name": _pick(rng, kind.names),
            "object": obj,
            "object_batched_reference": None,
            "object_id": None,
            "original_task_id": None,
            "original_workflow_id": None,
            "parameters": kind.params(rng, obj),
            "priority": _pick(rng, ("Medium", "Medium", "Medium", "High", "Low")),
            "process_id": None,
            "status": None,
            "tags": list(
                _pick(rng, ([], [], [""], ["billing"], ["dunning", "email"], ["finance"]))
            ),
            "task_id": parent,
        }
        self.tasks.append(task)
        # Reversed, so the first hook is on top of the stack and branches fan out around it.
        for offset, hook in reversed(list(enumerate(hooks))):
            spread = (offset + 1) // 2 * (1 if offset % 2 else -1)
            self.open_hooks.append((task_id, hook, col + 1, row + spread))
        return task

    def link(self, source: int | None, target: int, linkage_type: str, version_id: int) -> None:
        self.linkages.append(
            {
                "linkage_type": linkage_type,
                "source_task_id": source,
                "source_workflow_id": version_id if source is None else None,
                "target_task_id": target,
            }
        )


def task_count(rng: random.Random) -> int:
    """1..60, skewed small (mean ~18): most workflows are short, a few are long."""
    return 1 + int((MAX_TASKS - 1) * rng.random() ** 2.5)


def generate_definition(key: str, version_id: int) -> tuple[list[Task], list[Linkage]]:
    """The tasks and linkages of version ``version_id`` of the workflow identified by ``key``."""
    traits = workflow_traits(key)
    rng = random.Random(f"definition:{key}:{version_id}")  # noqa: S311 - test data
    build = _Builder(rng, version_id * TASK_ID_STRIDE)
    count = task_count(rng)
    orphan_index = rng.randrange(1, count) if count >= 3 and rng.random() < 0.06 else None
    first = build.task(0, None, 1, 0)
    build.link(None, first["id"], traits.event or "Start", version_id)
    for index in range(1, count):
        if index == orphan_index:  # on the canvas, never wired in (zuora-workflow-export.md §1.4)
            build.task(index, None, 1, -3)
            continue
        hooks = build.open_hooks
        if hooks and rng.random() < 0.8:
            # Mostly the newest hook (a chain), sometimes an older one (a new branch).
            pick = len(hooks) - 1 if rng.random() < 0.7 else rng.randrange(len(hooks))
            source, hook, col, row = hooks.pop(pick)
        else:  # every hook is used: fan out from an earlier task's first hook again
            parent = _pick(rng, build.tasks[: index - 1] or build.tasks)
            source, hook = parent["id"], _first_hook(parent)
            col, row = _position(parent)
            col, row = col + 1, row + 1
        task = build.task(index, source, col, row)
        build.link(source, task["id"], hook, version_id)
    wired = [t for t in build.tasks if t["task_id"] is not None]
    if len(wired) >= 3 and rng.random() < 0.3:  # a merge: a second edge into a later task
        hooks = [h for h in build.open_hooks if h[0] < wired[-1]["id"]]
        if hooks:
            source, hook, _col, _row = _pick(rng, hooks)
            targets = [t for t in wired if t["id"] > source]
            build.link(source, _pick(rng, targets)["id"], hook, version_id)
    if len(wired) >= 3 and rng.random() < 0.06:  # a cycle: a retry loop back to an earlier task
        late, early = wired[-1], wired[rng.randrange(len(wired) - 1)]
        build.link(late["id"], early["id"], _pick(rng, ("Failure", "Success")), version_id)
    return build.tasks, build.linkages


def _first_hook(task: Task) -> str:
    kind = next((k for k in CATALOGUE if k.action_type == task["action_type"]), None)
    if kind is None or not kind.hooks:
        return "Case_Else" if task["action_type"] == "Logic::Case" else "Success"
    return kind.hooks[0]


def _position(task: Task) -> tuple[int, int]:
    css = task.get("css") or {}
    try:
        col = (int(str(css.get("left", "470px")).removesuffix("px")) - 470) // 240 + 1
        row = (int(str(css.get("top", "160px")).removesuffix("px")) - 160) // 120
    except ValueError:
        return 1, 0
    return col, row


# ---------------------------------------------------------------------------------- changes


@dataclass
class EditSummary:
    """What an edit changed, by task id (for tests that assert a diff exactly)."""

    renamed: list[int] = field(default_factory=list)
    reconfigured: list[int] = field(default_factory=list)
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, list[int]]:
        return {
            "renamed": self.renamed,
            "reconfigured": self.reconfigured,
            "added": self.added,
            "removed": self.removed,
        }


def edit_definition(
    tasks: list[Task], linkages: list[Linkage], *, seed: int | str, changes: int = 1
) -> tuple[list[Task], list[Linkage], EditSummary]:
    """A copy with ``changes`` edits (rename, reconfigure, add or remove a task), deterministic for
    a seed. A task is touched at most once, so the summary is exact."""
    rng = random.Random(f"edit:{seed}")  # noqa: S311 - test data
    tasks, linkages = copy.deepcopy(tasks), copy.deepcopy(linkages)
    summary = EditSummary()
    touched: set[int] = set()
    for _ in range(changes):
        untouched = [t for t in tasks if t["id"] not in touched]
        entry_targets = {
            link["target_task_id"] for link in linkages if link["source_task_id"] is None
        }
        removable = [t for t in untouched if t["id"] not in entry_targets]
        top = max((t["id"] for t in tasks), default=0)
        roll = rng.random()
        if roll < 0.2 and removable and len(tasks) > 1:
            victim = _pick(rng, removable)
            tasks.remove(victim)
            linkages = [
                link
                for link in linkages
                if victim["id"] not in (link["source_task_id"], link["target_task_id"])
            ]
            for task in tasks:
                if task["task_id"] == victim["id"]:
                    task["task_id"] = None
            summary.removed.append(victim["id"])
            touched.add(victim["id"])
        elif roll < 0.4 and tasks and top % TASK_ID_STRIDE < TASK_ID_STRIDE - 1:
            parent = _pick(rng, tasks)
            col, row = _position(parent)
            build = _Builder(rng, top + 1)
            added = build.task(0, parent["id"], col + 1, row + 1)
            tasks.append(added)
            linkages.append(
                {
                    "linkage_type": _first_hook(parent),
                    "source_task_id": parent["id"],
                    "source_workflow_id": None,
                    "target_task_id": added["id"],
                }
            )
            summary.added.append(added["id"])
            touched.add(added["id"])
        elif untouched:
            task = _pick(rng, untouched)
            if roll < 0.7:
                task["name"] = f"{task['name']} (edited)"
                summary.renamed.append(task["id"])
            else:
                task["parameters"] = {**task["parameters"], "revision": str(rng.randint(2, 999))}
                summary.reconfigured.append(task["id"])
            touched.add(task["id"])
    return tasks, linkages, summary


def renumber(
    tasks: list[Task], linkages: list[Linkage], version_id: int
) -> tuple[list[Task], list[Linkage]]:
    """A copy for a new version: Zuora copies the tasks, with new ids, into the new version."""
    base = version_id * TASK_ID_STRIDE
    new_ids = {task["id"]: base + index for index, task in enumerate(tasks)}
    copied = copy.deepcopy(tasks)
    for task in copied:
        task["id"] = new_ids[task["id"]]
        parent = task.get("task_id")
        task["task_id"] = new_ids.get(parent) if parent is not None else None
    links = []
    for link in linkages:
        source = link["source_task_id"]
        target = new_ids.get(link["target_task_id"])
        if target is None or (source is not None and source not in new_ids):
            continue
        links.append(
            {
                **link,
                "source_task_id": new_ids[source] if source is not None else None,
                "source_workflow_id": version_id if source is None else None,
                "target_task_id": target,
            }
        )
    return copied, links
