"""The shell of StackBE's few server-rendered pages: one self-contained HTML document,
no external assets but an app's own logo, no JavaScript, readable on a phone, usable
with a keyboard. An app's branding (name, accent colour, logo) is escaped on the way in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from html import escape

__all__ = ["Brand", "csrf_token", "csrf_valid", "page"]

DEFAULT_ACCENT = "#3b5bdb"
_COLOR = re.compile(r"#[0-9a-fA-F]{6}")
_LOGO = re.compile(r"https://[^\s\x00\"'<>]+")

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;
color:#1a1d23;line-height:1.5}
main{max-width:30rem;margin:8vh auto;padding:2rem;background:#fff;border-radius:12px;
box-shadow:0 1px 3px rgba(0,0,0,.12)}
@media (max-width:34rem){main{margin:0;border-radius:0;min-height:100vh;padding:1.25rem}}
header{display:flex;align-items:center;gap:.75rem;margin-bottom:1.5rem;font-weight:600}
header img{max-height:2.5rem;max-width:8rem}
h1{font-size:1.4rem;margin-top:0}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
button,.button{font:inherit;padding:.7rem 1.4rem;border:0;border-radius:8px;
background:var(--accent);color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary{background:#e9ecef;color:#1a1d23}
button:focus-visible,a:focus-visible,input:focus-visible,select:focus-visible{
outline:3px solid var(--accent);outline-offset:2px}
a{color:var(--accent)}
code{display:block;word-break:break-all;background:#f1f3f5;padding:.6rem;border-radius:6px;
font-size:.8rem}
dl{display:grid;grid-template-columns:auto 1fr;gap:.4rem 1rem}dt{color:#5c6370}dd{margin:0}
.actions{display:flex;gap:1rem;align-items:center;flex-wrap:wrap;margin-top:1.25rem}
.note{color:#5c6370;font-size:.9rem}
[role=alert]{background:#fff4e6;border-left:4px solid #f08c00;padding:.6rem .8rem}
label{display:block;margin:.75rem 0 .25rem}
input,select{font:inherit;padding:.55rem;border:1px solid #adb5bd;border-radius:6px;width:100%}
table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:.4rem .3rem;
border-bottom:1px solid #e9ecef}ul{padding-left:1.2rem}
[role=status]{background:#ebfbee;border-left:4px solid #2f9e44;padding:.6rem .8rem}
form{margin:0}
"""


@dataclass(frozen=True)
class Brand:
    """An app's look on its hosted pages; values that are not what they claim are dropped."""

    name: str = ""
    color: str | None = None
    logo_url: str | None = None

    def accent(self) -> str:
        return self.color if self.color and _COLOR.fullmatch(self.color) else DEFAULT_ACCENT

    def header(self) -> str:
        if not self.name:
            return ""
        logo = ""
        if self.logo_url and _LOGO.fullmatch(self.logo_url):
            logo = f'<img src="{escape(self.logo_url, quote=True)}" alt="">'
        return f"<header>{logo}<span>{escape(self.name)}</span></header>"


def page(title: str, body: str, brand: Brand | None = None) -> str:
    """A whole page; ``body`` is trusted HTML, so escape what goes into it."""
    brand = brand or Brand()
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        '<meta name=referrer content="no-referrer">'
        f"<title>{escape(title)}</title>"
        f"<style>:root{{--accent:{brand.accent()}}}{STYLE}</style></head>"
        f"<body><main>{brand.header()}{body}</main></body></html>"
    )


def csrf_token(secret: bytes, purpose: str, subject: str) -> str:
    """A form's token, bound to what the form acts on (a checkout session, a portal
    session) and unknowable without the service's secret."""
    mac = hmac.new(secret, f"csrf:{purpose}:{subject}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode()


def csrf_valid(secret: bytes, purpose: str, subject: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(given, csrf_token(secret, purpose, subject))
