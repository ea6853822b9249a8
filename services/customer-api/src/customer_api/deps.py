"""FastAPI dependencies as ``Annotated`` aliases, so routes read like prose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from application.customers import CustomerPolicy
from application.uow import SqlUnitOfWork
from fastapi import Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from customer_api.runtime import Runtime

__all__ = [
    "PageDep",
    "PageParams",
    "PageSizeDep",
    "PolicyDep",
    "RuntimeDep",
    "SessionDep",
    "UowDep",
]

MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 200

# The dependencies below do no I/O: async, so FastAPI calls them on the event loop instead of
# handing each one to the thread pool (a thread switch per dependency per request).


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    async with runtime.session_factory() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def get_uow(session: SessionDep, runtime: RuntimeDep) -> SqlUnitOfWork:
    return SqlUnitOfWork(session, on_commit=runtime.wake_relay)


UowDep = Annotated[SqlUnitOfWork, Depends(get_uow)]


async def get_policy(runtime: RuntimeDep) -> CustomerPolicy:
    return runtime.policy


PolicyDep = Annotated[CustomerPolicy, Depends(get_policy)]

PageDep = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page number, from 1.")]
PageSizeDep = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page (max {MAX_PAGE_SIZE}).")
]
PageParams = tuple[int, int]
