from __future__ import annotations

from fastapi import APIRouter, Path, Request, Response

from api.audit import service as audit
from api.changes import service as changes
from api.departments import service
from api.departments.schemas import DepartmentIn, DepartmentList, DepartmentOut
from api.deps import AdminKey, SessionDep, SettingsDep
from api.http import respond
from api.http.docs import CSV_CONTENT, JSON_WRITE_ERRORS, READ_ERRORS
from api.http.memory_first import memory_first
from api.http.params import JSON_BODY, PAGED
from api.schemas import DEPARTMENT_SLUG, SLUG_PATTERN

router = APIRouter(prefix="/v1/departments", tags=["departments"], responses=READ_ERRORS)


@router.get(
    "",
    response_model=DepartmentList,
    operation_id="listDepartments",
    responses=CSV_CONTENT,
    dependencies=PAGED,
)
@memory_first
def list_departments(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """All departments, by slug. CSV with `.csv` or `Accept: text/csv`."""
    version = changes.version(session, *service.SCOPES)
    return respond.collection(
        request, service.listing(session), version, base_url=settings.public_base_url
    )


@router.get("/{slug}", response_model=DepartmentOut, operation_id="getDepartment")
@memory_first
def get_department(
    request: Request,
    session: SessionDep,
    slug: str = Path(description=DEPARTMENT_SLUG),
) -> Response:
    """One department."""
    version = changes.version(session, *service.SCOPES)
    dept = service.get(session, slug)
    return respond.document(request, version, lambda: service.to_public(dept))


@router.put(
    "/{slug}",
    response_model=DepartmentOut,
    operation_id="putDepartment",
    responses={201: {"model": DepartmentOut, "description": "Created"}, **JSON_WRITE_ERRORS},
    dependencies=JSON_BODY,
)
def put_department(
    session: SessionDep,
    key: AdminKey,
    body: DepartmentIn,
    slug: str = Path(pattern=SLUG_PATTERN, max_length=100, description=DEPARTMENT_SLUG),
) -> Response:
    """Create or fully replace a department (admin key)."""
    dept, created = service.put(session, slug, body)
    audit.record(
        session,
        key=key,
        action="department.put",
        target=slug,
        department=slug,
        detail={"created": created},
    )
    return respond.json_response(service.to_public(dept), status_code=201 if created else 200)
