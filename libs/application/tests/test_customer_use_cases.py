"""The customer use cases over the in-memory unit of work: no database, no network."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from application import customers
from application.customers import KEEP, CustomerChanges, CustomerPolicy, NewCustomer
from application.errors import (
    BaseUrlNotAllowed,
    ConcurrentChange,
    CredentialsRejected,
    CustomerNameTaken,
    InvalidInput,
    NotFound,
    StoredSecretUnusable,
    ZuoraUnavailable,
)
from sync_messages import CustomerCreated, CustomerDeleted, CustomerUpdated, topics
from workflow_store.crypto import SecretBox
from workflow_store.customers import decrypt_client_secret
from zuora_client import ZuoraCredentials

from .fakes import FakeChecker, FakeUnitOfWork

SANDBOX = "http://127.0.0.1:8080"


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def checker() -> FakeChecker:
    return FakeChecker()


@pytest.fixture
def policy(checker: FakeChecker) -> CustomerPolicy:
    box = SecretBox([SecretBox.generate_key()])
    return CustomerPolicy(box=box, allowed_base_urls=(SANDBOX,), checker=checker)


def new(**overrides: object) -> NewCustomer:
    values: dict[str, object] = {
        "name": "Acme",
        "base_url": SANDBOX + "/",
        "client_id": "cid",
        "client_secret": "s3cret",
    }
    values.update(overrides)
    return NewCustomer(**values)  # type: ignore[arg-type]


async def test_add_checks_stores_encrypted_and_announces_the_customer(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker
) -> None:
    view = await customers.add_customer(uow, policy, new())
    assert view.name == "Acme" and view.base_url == SANDBOX and view.workflow_count == 0
    assert view.credential_status == "valid"
    assert [c.base_url for c in checker.calls] == [SANDBOX]  # the normalised URL was checked
    assert uow.reads_ended == 1  # no connection held while Zuora was asked
    stored = uow.customers.rows[view.id]
    assert stored.client_secret_encrypted != "s3cret"
    assert decrypt_client_secret(policy.box, stored) == "s3cret"
    [event] = uow.published
    assert event.topic == topics.CUSTOMER_EVENTS and event.key == str(view.id)
    assert isinstance(event.message, CustomerCreated) and event.message.customer_id == view.id
    assert "s3cret" not in repr(new()) and "s3cret" not in repr(view)


@pytest.mark.parametrize(("check", "policy_checks"), [(False, True), (True, False), (False, False)])
async def test_add_without_a_check_leaves_the_credentials_unknown(
    uow: FakeUnitOfWork, checker: FakeChecker, check: bool, policy_checks: bool
) -> None:
    policy = CustomerPolicy(
        box=SecretBox([SecretBox.generate_key()]),
        allowed_base_urls=(SANDBOX,),
        checker=checker,
        validate_credentials=policy_checks,
    )
    view = await customers.add_customer(uow, policy, new(check_credentials=check))
    assert view.credential_status == "unknown" and checker.calls == []
    assert len(uow.published) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", " Acme"),
        ("name", "Acme "),
        ("name", ""),
        ("name", "A" * 201),
        ("name", "Ac\x00me"),
        ("name", "Ac\nme"),
        ("client_id", "has space"),
        ("client_id", ""),
        ("entity_id", "e\tid"),
        ("client_secret", ""),
        ("client_secret", " padded"),
        ("client_secret", "x" * 201),
    ],
)
async def test_add_refuses_what_the_rules_refuse_and_writes_nothing(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker, field: str, value: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        await customers.add_customer(uow, policy, new(**{field: value}))
    assert refused.value.field == field
    assert value not in refused.value.detail or not value.strip()  # never echoed
    assert uow.customers.rows == {} and uow.published == [] and checker.calls == []


@pytest.mark.parametrize(
    "url", ["https://rest.zuora.com.evil.com", "http://127.0.0.1:9999", "ftp://x", "x\x00"]
)
async def test_add_refuses_a_base_url_that_is_not_allowed(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker, url: str
) -> None:
    with pytest.raises(BaseUrlNotAllowed) as refused:
        await customers.add_customer(uow, policy, new(base_url=url))
    assert refused.value.field == "base_url" and url not in refused.value.detail
    assert checker.calls == [] and uow.published == []


async def test_add_refuses_a_taken_name_before_asking_zuora(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker
) -> None:
    await customers.add_customer(uow, policy, new())
    checker.calls.clear()
    with pytest.raises(CustomerNameTaken):
        await customers.add_customer(uow, policy, new(client_id="other"))
    assert checker.calls == [] and len(uow.published) == 1


@pytest.mark.parametrize(
    "error", [CredentialsRejected("refused"), ZuoraUnavailable("down", retry_after=30)]
)
async def test_add_stores_nothing_when_the_check_fails(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker, error: Exception
) -> None:
    checker.error = error
    with pytest.raises(type(error)):
        await customers.add_customer(uow, policy, new())
    assert uow.customers.rows == {} and uow.published == []


async def test_add_that_loses_the_name_race_publishes_nothing(
    uow: FakeUnitOfWork, policy: CustomerPolicy
) -> None:
    async def racing_checker(credentials: ZuoraCredentials) -> None:
        # Another request adds the same name while Zuora is asked about ours.
        await customers.add_customer(
            uow, replace(policy, checker=FakeChecker()), new(client_id="other")
        )

    with pytest.raises(CustomerNameTaken):
        await customers.add_customer(uow, replace(policy, checker=racing_checker), new())
    assert len(uow.customers.rows) == 1 and len(uow.published) == 1
    assert uow.rollbacks == 1


async def _added(uow: FakeUnitOfWork, policy: CustomerPolicy) -> uuid.UUID:
    view = await customers.add_customer(uow, policy, new(entity_id="e1"))
    uow.published.clear()
    return view.id


async def test_rename_announces_the_change_without_asking_zuora(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker
) -> None:
    cid = await _added(uow, policy)
    checker.calls.clear()
    view = await customers.update_customer(uow, policy, cid, CustomerChanges(name="Acme 2"))
    assert view.name == "Acme 2" and view.credential_status == "valid" and checker.calls == []
    [event] = uow.published
    assert isinstance(event.message, CustomerUpdated)
    assert event.message.changed_fields == ["name"] and not event.message.credentials_changed


async def test_secret_rotation_is_checked_with_the_new_secret_and_stored(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker
) -> None:
    cid = await _added(uow, policy)
    checker.calls.clear()
    await customers.update_customer(uow, policy, cid, CustomerChanges(client_secret="n3w"))
    assert [c.client_secret.get_secret_value() for c in checker.calls] == ["n3w"]
    assert decrypt_client_secret(policy.box, uow.customers.rows[cid]) == "n3w"
    [event] = uow.published
    assert isinstance(event.message, CustomerUpdated)
    assert event.message.changed_fields == ["client_secret"] and event.message.credentials_changed


async def test_a_change_to_what_is_stored_already_announces_nothing(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker
) -> None:
    cid = await _added(uow, policy)
    checker.calls.clear()
    same = CustomerChanges(name="Acme", client_secret="s3cret", base_url=SANDBOX, entity_id=KEEP)
    await customers.update_customer(uow, policy, cid, same)
    assert uow.published == [] and checker.calls == []


async def test_entity_id_is_kept_unless_given_and_cleared_by_none(
    uow: FakeUnitOfWork, policy: CustomerPolicy
) -> None:
    cid = await _added(uow, policy)
    kept = await customers.update_customer(uow, policy, cid, CustomerChanges(active=False))
    assert kept.entity_id == "e1" and not kept.active
    cleared = await customers.update_customer(uow, policy, cid, CustomerChanges(entity_id=None))
    assert cleared.entity_id is None
    assert [e.message.changed_fields for e in uow.published] == [["active"], ["entity_id"]]  # type: ignore[attr-defined]


async def test_credentials_change_with_an_unreadable_stored_secret_is_refused(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker
) -> None:
    cid = await _added(uow, policy)
    uow.customers.rows[cid].client_secret_encrypted = "not-a-fernet-token"
    with pytest.raises(StoredSecretUnusable):
        await customers.update_customer(uow, policy, cid, CustomerChanges(client_id="other"))
    assert uow.published == []


async def test_a_change_committed_while_zuora_was_asked_is_not_overwritten(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker
) -> None:
    cid = await _added(uow, policy)

    def concurrent_rename() -> None:
        uow.customers.rows[cid].name = "Renamed meanwhile"

    checker.during = concurrent_rename
    with pytest.raises(ConcurrentChange):
        await customers.update_customer(uow, policy, cid, CustomerChanges(client_secret="n3w"))
    assert decrypt_client_secret(policy.box, uow.customers.rows[cid]) == "s3cret"
    assert uow.published == []


async def test_update_and_remove_of_an_unknown_customer(
    uow: FakeUnitOfWork, policy: CustomerPolicy
) -> None:
    with pytest.raises(NotFound):
        await customers.update_customer(uow, policy, uuid.uuid4(), CustomerChanges(name="x"))
    with pytest.raises(NotFound):
        await customers.remove_customer(uow, "nobody")
    assert uow.published == []


@pytest.mark.parametrize("by", ["name", "id", "id-text"])
async def test_remove_by_name_or_id_announces_the_deletion(
    uow: FakeUnitOfWork, policy: CustomerPolicy, by: str
) -> None:
    cid = await _added(uow, policy)
    refs: dict[str, str | uuid.UUID] = {"name": "Acme", "id": cid, "id-text": str(cid)}
    ref = refs[by]
    removed = await customers.remove_customer(uow, ref)
    assert removed.id == cid and uow.customers.rows == {}
    [event] = uow.published
    assert isinstance(event.message, CustomerDeleted) and event.key == str(cid)


async def test_check_credentials_records_valid_and_invalid(
    uow: FakeUnitOfWork, policy: CustomerPolicy, checker: FakeChecker
) -> None:
    cid = await _added(uow, policy)
    uow.customers.rows[cid].credential_status = "unknown"
    checked = await customers.check_credentials(uow, policy, "Acme")
    assert checked.credential_status == "valid"
    assert checker.calls[-1].client_secret.get_secret_value() == "s3cret"
    checker.error = CredentialsRejected("refused")
    with pytest.raises(CredentialsRejected):
        await customers.check_credentials(uow, policy, cid)
    assert uow.customers.rows[cid].credential_status == "invalid"
    checker.error = ZuoraUnavailable("down")
    with pytest.raises(ZuoraUnavailable):
        await customers.check_credentials(uow, policy, cid)
    assert uow.customers.rows[cid].credential_status == "invalid"  # nothing learnt
    assert uow.published == []  # a status is no change of the customer


async def test_reads_return_views_and_not_found(
    uow: FakeUnitOfWork, policy: CustomerPolicy
) -> None:
    cid = await _added(uow, policy)
    await customers.add_customer(uow, policy, new(name="Beta", check_credentials=False))
    await customers.update_customer(uow, policy, cid, CustomerChanges(active=False))
    uow.customers.workflow_counts[cid] = 7
    assert (await customers.get_customer(uow, cid)).workflow_count == 7
    assert (await customers.find_customer(uow, "Acme")).id == cid
    everyone = await customers.list_customers(uow, page=1, page_size=1)
    assert [c.name for c in everyone.items] == ["Acme"] and everyone.total == 2
    active = await customers.list_customers(uow, active_only=True)
    assert [c.name for c in active.items] == ["Beta"]
    with pytest.raises(NotFound):
        await customers.get_customer(uow, uuid.uuid4())
