"""`/apply`: paste or upload YAML, validate it with the server's dry run, apply it."""

from __future__ import annotations

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from starlette.datastructures import UploadFile

from cyclone.ui.apply_docs import ManifestError, apply_documents, parse_documents
from cyclone.ui.deps import UiSession, ui_router, ui_session
from cyclone.ui.templating import render

router = ui_router()
MAX_UPLOAD_BYTES = 1024 * 1024


@router.get("/apply", response_class=HTMLResponse)
async def apply_page(request: Request, session: UiSession = Depends(ui_session)
                     ) -> HTMLResponse:
    return render(request, "apply.html", {"text": "", "outcomes": None, "problem": ""})


async def _submitted_text(request: Request) -> str:
    form = await request.form()
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise ManifestError(f"the file is larger than {MAX_UPLOAD_BYTES // 1024} KiB")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ManifestError("the file is not UTF-8 text") from None
    text = form.get("yaml")
    return text if isinstance(text, str) else ""


@router.post("/apply", response_class=HTMLResponse)
async def apply_submit(request: Request, session: UiSession = Depends(ui_session)
                       ) -> HTMLResponse:
    """`action=validate` checks every object and stores nothing; `action=apply` writes."""
    form = await request.form()
    dry_run = form.get("action") != "apply"
    text = ""
    try:
        text = await _submitted_text(request)
        objects = parse_documents(text)
    except ManifestError as exc:
        return render(request, "apply.html", {"text": text, "outcomes": None,
                                              "problem": str(exc)}, status_code=422)
    outcomes = await apply_documents(session, objects, dry_run=dry_run)
    failed = any(not o.ok for o in outcomes)
    return render(request, "apply.html", {
        "text": text, "outcomes": outcomes, "problem": "", "dry_run": dry_run,
        "failed": failed}, status_code=422 if failed else 200)
