# ruff: noqa: RUF001  (the names use real en dashes, as Zuora users type them)
"""Deterministic generator of realistic, Zuora-shaped workflow definitions.

Items are raw dicts exactly as ``GET /workflows`` returns them (zuora-api.md §4.2/§4.4): mixed key
casing, the misspelled ``latest_inactive_verisons``, ``interval`` null or ``""`` when the scheduled
trigger is off, ``active_version`` present / ``null`` / absent, ISO timestamps with milliseconds.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_BASE_NAMES = (
    "Dunning notice – 30 days",
    "Dunning notice – 60 days",
    "Dunning notice – final",
    "Refresh products",
    "Sync invoices to NetSuite",
    "Sync payments to NetSuite",
    "Sync accounts to Salesforce",
    "Push usage to data warehouse",
    "Apply credit balance",
    "Auto-renew expiring subscriptions",
    "Cancel unpaid subscriptions",
    "Send welcome email",
    "Generate monthly statements",
    "Retry failed payments",
    "Write off small balances",
    "Bill run – EMEA",
    "Bill run – North America",
    "Bill run – APAC",
    "Post invoices",
    "Email invoices",
    "Update tax codes",
    "Sync FX rates",
    "Archive cancelled accounts",
    "Notify CSM of downgrade",
    "Trial to paid conversion",
    "Usage overage alert",
    "Revenue schedule catch-up",
    "Collections escalation",
    "Payment method expiry reminder",
    "Reconcile gateway settlements",
    "Export journal entries",
    "Refresh price books",
    "Suspend delinquent accounts",
    "Resume paid accounts",
    "Credit memo approval",
    "Quote to subscription",
    "Sync contacts to HubSpot",
    "Daily AR aging report",
    "Clean up draft invoices",
    "Amendment audit log",
)
_VARIANTS = (
    "",
    "",
    "",
    " (v2)",
    " – sandbox test",
    " – legacy",
    " (copy)",
    " – EU entity",
    " – US",
)
_DESCRIPTIONS = (
    "",
    "",
    "",
    "Nightly catalog refresh",
    "Owned by billing ops",
    "Do not edit without approval from finance",
    "Runs after the bill run completes",
    "Replaces the old Zapier integration",
    "Triggered from the callout on payment failure",
    "See runbook BILL-142",
)
_VERSION_NOTES = ("", "", "initial", "add retry", "fix date filter", "new template", "hotfix")
_CRONS = (
    "0 0 * * *",
    "0 2 * * *",
    "30 1 * * *",
    "0 */4 * * *",
    "0 6 * * 1",
    "0 0 1 * *",
    "15 3 * * 1-5",
    "0 12 15 * *",
    "*/30 * * * *",
)
_TIMEZONES = (
    "Sydney",
    "UTC",
    "Pacific Time (US & Canada)",
    "Eastern Time (US & Canada)",
    "London",
    "Berlin",
    "Tokyo",
    "Singapore",
)
PRIORITIES = ("High", "Medium", "Low")
_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)
_SPAN_MS = int((datetime(2025, 10, 1, tzinfo=UTC) - _EPOCH).total_seconds() * 1000)


def iso_ms(moment: datetime) -> str:
    """``2024-02-04T13:39:10.530Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now_iso() -> str:
    return iso_ms(datetime.now(UTC))


_DAY_MS = 86_400_000
_DAY_CACHE: dict[int, str] = {}


def _ts(offset_ms: int) -> str:
    """ISO timestamp ``offset_ms`` after 2019-01-01 (fast: the date part is cached)."""
    days, rem = divmod(offset_ms, _DAY_MS)
    day = _DAY_CACHE.get(days)
    if day is None:
        day = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")
        _DAY_CACHE[days] = day
    secs, millis = divmod(rem, 1000)
    mins, sec = divmod(secs, 60)
    hour, minute = divmod(mins, 60)
    return f"{day}T{hour:02d}:{minute:02d}:{sec:02d}.{millis:03d}Z"


def uuid_from(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


class WorkflowGenerator:
    """Yields workflow items with increasing, realistic ids (from ``random.Random(seed)``)."""

    def __init__(self, seed: int | str, first_id: int | None = None) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - test data, not crypto
        self.next_id = first_id if first_id is not None else self.rng.randint(10_000, 60_000)
        self._name_counts: dict[str, int] = {}

    def _name(self) -> str:
        rng = self.rng
        rnd = rng.random
        name = _BASE_NAMES[int(rnd() * len(_BASE_NAMES))] + _VARIANTS[int(rnd() * len(_VARIANTS))]
        count = self._name_counts.get(name, 0) + 1
        self._name_counts[name] = count
        return name if count == 1 else f"{name} #{count}"

    def make(self) -> tuple[dict[str, Any], str]:
        """One definition and its priority (priority is not part of the list item)."""
        rng = self.rng
        rnd = rng.random

        def pick(seq: tuple[Any, ...]) -> Any:
            return seq[int(rnd() * len(seq))]

        def between(low: int, high: int) -> int:
            return low + int(rnd() * (high - low + 1))

        wf_id = self.next_id
        name = self._name()
        n_versions = pick((1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 11, 14))
        self.next_id = wf_id + n_versions + 1 + between(0, 40)
        callout = rnd() < 0.35
        ondemand = rnd() < 0.7
        scheduled = rnd() < 0.45
        if not (callout or ondemand or scheduled):
            ondemand = True
        if scheduled:
            interval: str | None = pick(_CRONS)
            timezone: str | None = pick(_TIMEZONES)
        else:
            interval = pick((None, ""))
            timezone = None
        priority = pick(PRIORITIES)
        created = between(0, _SPAN_MS - 86_400_001)
        step = max(1, (_SPAN_MS - created) // (n_versions + 1))
        version_times = [created + i * between(1, step) for i in range(n_versions)]
        version_times.sort()
        updated = min(_SPAN_MS, version_times[-1] + between(0, 86_400_000))
        # active: "present" (object), "null", or "absent"
        roll = rnd()
        active_mode = "present" if roll < 0.82 else ("null" if roll < 0.9 else "absent")
        active_idx = n_versions - 1 - pick((0, 0, 0, 1)) if active_mode == "present" else -1
        active_idx = max(active_idx, 0) if active_mode == "present" else -1
        versions: list[dict[str, Any]] = []
        active: dict[str, Any] | None = None
        for i in range(n_versions):
            v_id = wf_id + 1 + i
            label = f"0.{i // 10}.{i % 10 + 1}"
            note = pick(_VERSION_NOTES)
            if i == active_idx:
                active = {
                    "id": v_id,
                    "version": label,
                    "status": "Active",
                    "type": "Workflow::Setup",
                    "description": note,
                }
                continue
            v_sched = scheduled and rnd() < 0.8
            versions.append(
                {
                    "id": v_id,
                    "name": name,
                    "description": note,
                    "version": label,
                    "type": "Workflow::Setup",
                    "status": "Inactive",
                    "priority": pick(PRIORITIES),
                    "calloutTrigger": callout,
                    "ondemandTrigger": ondemand,
                    "scheduledTrigger": v_sched,
                    "interval": interval if v_sched else "",
                    "timezone": timezone if v_sched else None,
                    "createdAt": _ts(version_times[i]),
                    "updatedAt": _ts(version_times[i] + between(0, 3_600_000)),
                }
            )
        versions.reverse()  # latest first
        item: dict[str, Any] = {
            "id": wf_id,
            "name": name,
            "description": pick(_DESCRIPTIONS),
            "status": "Active" if active is not None else "Inactive",
            "calloutTrigger": callout,
            "ondemandTrigger": ondemand,
            "scheduledTrigger": scheduled,
            "interval": interval,
            "timezone": timezone,
            "createdAt": _ts(created),
            "updatedAt": _ts(updated),
        }
        if active_mode == "present":
            item["active_version"] = active
        elif active_mode == "null":
            item["active_version"] = None
        item["latest_inactive_verisons"] = versions[:10]
        return item, priority

    def many(self, count: int) -> list[tuple[dict[str, Any], str]]:
        return [self.make() for _ in range(count)]


def generate_workflows(count: int, seed: int | str = 0) -> dict[int, dict[str, Any]]:
    """``count`` workflows keyed by id, deterministic for a given seed."""
    gen = WorkflowGenerator(seed)
    return {item["id"]: item for item, _ in gen.many(count)}
