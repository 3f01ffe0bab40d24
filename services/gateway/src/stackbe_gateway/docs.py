"""The API reference at ``/docs``: plain HTML rendered on the server from the merged document.

No JavaScript, no CDN, no external assets: one page with an inline stylesheet that works
offline. Every value from the document is HTML-escaped.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

import msgspec

__all__ = ["render_docs"]

METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
_MAX_DEPTH = 3

STYLE = """
:root{--fg:#1d232b;--muted:#5b6573;--line:#dfe3e8;--bg:#fff;--code:#f4f6f8}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);
background:var(--bg)}
header{padding:24px 32px;border-bottom:1px solid var(--line)}
header h1{margin:0 0 8px;font-size:24px}
.layout{display:flex;align-items:flex-start}
nav{position:sticky;top:0;width:300px;max-height:100vh;overflow:auto;padding:16px 24px;
border-right:1px solid var(--line);font-size:13px}
nav ul{list-style:none;margin:0;padding:0}nav li{margin:2px 0}
nav a{color:var(--fg);text-decoration:none}nav a:hover{text-decoration:underline}
main{flex:1;min-width:0;padding:8px 32px 64px}
section.op,section.schema{border-bottom:1px solid var(--line);padding:16px 0}
h2{margin-top:32px}h3{margin:0 0 8px;font-size:17px}h4{margin:16px 0 6px;font-size:14px}
code{background:var(--code);padding:1px 4px;border-radius:3px;font-size:13px}
.method{display:inline-block;min-width:64px;text-align:center;padding:2px 6px;
border-radius:4px;color:#fff;font-size:12px;font-weight:700;text-transform:uppercase}
.get{background:#2f7d32}.post{background:#1f5fbf}.put,.patch{background:#a86500}
.delete{background:#b3261e}.head,.options{background:#5b6573}
table{border-collapse:collapse;width:100%;margin:4px 0;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--code)}
.muted{color:var(--muted)}.req{color:#b3261e;font-size:12px}
@media (max-width:800px){.layout{display:block}nav{position:static;width:auto;
max-height:none;border-right:0}}
"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", text).strip("-").lower()


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type_of(schema: Any) -> str:
    """A one-line description of a schema, with links to named schemas."""
    if not isinstance(schema, dict):
        return ""
    if "$ref" in schema:
        name = _ref_name(str(schema["$ref"]))
        if str(schema["$ref"]).startswith("#/components/schemas/"):
            return f'<a href="#schema-{_slug(name)}">{escape(name)}</a>'
        return escape(name)
    for key, joiner in (("oneOf", " | "), ("anyOf", " | "), ("allOf", " &amp; ")):
        if key in schema and isinstance(schema[key], list):
            return joiner.join(_type_of(part) for part in schema[key])
    kind = schema.get("type")
    if isinstance(kind, list):
        text = " | ".join(escape(str(k)) for k in kind)
    elif kind == "array":
        text = f"array of {_type_of(schema.get('items')) or 'any'}"
    else:
        text = escape(str(kind)) if kind else ("object" if "properties" in schema else "any")
    if "format" in schema:
        text += f' <span class="muted">({escape(str(schema["format"]))})</span>'
    if "enum" in schema and isinstance(schema["enum"], list):
        values = ", ".join(f"<code>{escape(_json(v))}</code>" for v in schema["enum"])
        text += f" one of {values}"
    if "const" in schema:
        text += f" = <code>{escape(_json(schema['const']))}</code>"
    return text


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _schema_html(schema: Any, depth: int = 0) -> str:
    """A schema as a property table (nested objects inline, up to a few levels)."""
    if not isinstance(schema, dict):
        return ""
    properties = schema.get("properties")
    if not isinstance(properties, dict) or not properties or depth >= _MAX_DEPTH:
        return f"<p>{_type_of(schema)}</p>"
    required = set(schema.get("required") or [])
    rows = []
    for name, prop in properties.items():
        prop = prop if isinstance(prop, dict) else {}
        cell = _type_of(prop)
        if isinstance(prop.get("properties"), dict) and prop["properties"]:
            cell = _schema_html(prop, depth + 1)
        notes = escape(str(prop.get("description", "")))
        if "default" in prop:
            default = escape(_json(prop["default"]))
            notes += f' <span class="muted">default <code>{default}</code></span>'
        flag = ' <span class="req">required</span>' if name in required else ""
        rows.append(
            f"<tr><td><code>{escape(str(name))}</code>{flag}</td><td>{cell}</td>"
            f"<td>{notes}</td></tr>"
        )
    return (
        "<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _parameters_html(parameters: list[Any]) -> str:
    rows = []
    for param in parameters:
        if not isinstance(param, dict):
            continue
        flag = ' <span class="req">required</span>' if param.get("required") else ""
        rows.append(
            f"<tr><td><code>{escape(str(param.get('name', '')))}</code>{flag}</td>"
            f"<td>{escape(str(param.get('in', '')))}</td>"
            f"<td>{_type_of(param.get('schema'))}</td>"
            f"<td>{escape(str(param.get('description', '')))}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th>"
        "<th>Description</th></tr>" + "".join(rows) + "</table>"
    )


def _content_html(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "".join(
        f'<p class="muted">{escape(str(media))}</p>{_schema_html((body or {}).get("schema"))}'
        for media, body in content.items()
        if isinstance(body, dict) or body is None
    )


def _operation_html(path: str, method: str, op: dict[str, Any], shared_params: list[Any]) -> str:
    anchor = f"op-{method}-{_slug(path)}"
    out = [
        f'<section class="op" id="{anchor}"><h3><span class="method {method}">'
        f"{method}</span> <code>{escape(path)}</code></h3>"
    ]
    if op.get("summary"):
        out.append(f"<p><strong>{escape(str(op['summary']))}</strong></p>")
    if op.get("description"):
        out.append(f"<p>{escape(str(op['description']))}</p>")
    out.append(_parameters_html([*shared_params, *(op.get("parameters") or [])]))
    body = op.get("requestBody")
    if isinstance(body, dict):
        flag = ' <span class="req">required</span>' if body.get("required") else ""
        out.append(f"<h4>Request body{flag}</h4>{_content_html(body.get('content'))}")
    responses = op.get("responses")
    if isinstance(responses, dict) and responses:
        out.append("<h4>Responses</h4>")
        for status, response in responses.items():
            response = response if isinstance(response, dict) else {}
            out.append(
                f"<p><code>{escape(str(status))}</code> "
                f"{escape(str(response.get('description', '')))}</p>"
                f"{_content_html(response.get('content'))}"
            )
    out.append("</section>")
    return "".join(out)


def render_docs(document: dict[str, Any]) -> str:
    info = document.get("info") or {}
    title = escape(str(info.get("title", "API")))
    paths = document.get("paths") or {}
    nav, body = [], []
    for path, item in paths.items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method in METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                nav.append(
                    f'<li><a href="#op-{method}-{_slug(path)}"><span class="method '
                    f'{method}">{method}</span> {escape(path)}</a></li>'
                )
                body.append(_operation_html(path, method, op, shared))
    schemas = (document.get("components") or {}).get("schemas") or {}
    schema_parts = [
        f'<section class="schema" id="schema-{_slug(name)}">'
        f"<h3>{escape(name)}</h3>"
        + (
            f"<p>{escape(str(s['description']))}</p>"
            if isinstance(s, dict) and s.get("description")
            else ""
        )
        + f"{_schema_html(s)}</section>"
        for name, s in schemas.items()
    ]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{title}</title><style>{STYLE}</style></head><body>"
        f'<header><h1>{title} <span class="muted">{escape(str(info.get("version", "")))}'
        f"</span></h1><p>{escape(str(info.get('description', '')))}</p>"
        '<p class="muted">Machine-readable: <a href="/openapi.json">/openapi.json</a></p>'
        "</header>"
        f'<div class="layout"><nav><ul>{"".join(nav)}</ul>'
        + ('<p><a href="#schemas">Schemas</a></p>' if schema_parts else "")
        + f"</nav><main><h2>Endpoints</h2>{''.join(body) or '<p>No endpoints.</p>'}"
        + (f'<h2 id="schemas">Schemas</h2>{"".join(schema_parts)}' if schema_parts else "")
        + "</main></div></body></html>"
    )
