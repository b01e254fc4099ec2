"""Personal data in text: patterns, checksums, and what is not personal (reserved, stand-in, public values).

Used by the quality step's ``personal_data`` rule (candidates found in DuckDB, judged here) and by the
``redact_pii`` step.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
PHONE = (r"(?:\+86[- ]?)?\b1[3-9]\d{9}\b|\b1[3-9]\d[ -]\d{4}[ -]\d{4}\b|\B\+\d{1,3}[ -]?\(?\d{1,4}\)?[ -]?\d{3,4}[ -]?\d{3,4}\b"
         r"|\(\d{3}\) ?\d{3}-\d{4}\b|\b\d{3}-\d{3}-\d{4}\b|\b0\d{2,3}-\d{7,8}\b")
PHONE_IN_CONTEXT = r"[^\n]{0,16}(?:" + PHONE + ")"
CN_ID = r"\b\d{17}[\dXx]\b"
CARD = r"\b\d(?:[ -]?\d){12,18}\b"
# CARD in running text, group 1: not a part of a decimal number (0.1234567890123456) or of a longer word
CARD_IN_TEXT = r"(?:^|[^.\w])(\d(?:[ -]?\d){12,18})(?:$|[^.\w]|\.\D|\.$)"
# API keys and secrets of the common services, and key = "..." assignments of long mixed strings
CREDENTIAL = (r"\b(?:sk-(?:proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36}|xox[abposr]-[A-Za-z0-9-]{10,}|"
              r"AIza[0-9A-Za-z_-]{35})\b|(?i:api[_-]?key|secret|access[_-]?token|auth[_-]?token|x-rapidapi-key)['\"]?\s*[:=]\s*['\"]"
              r"[A-Za-z0-9_\-]{24,}['\"]")


def _luhn(digits: str) -> bool:
    total, alt = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if alt:
            d *= 2
            if d > 9:
                d -= 9
        total += d
        alt = not alt
    return total % 10 == 0


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def valid_cn_id(s: str) -> bool:
    """A Chinese resident ID number: 17 digits, a plausible birth date, ISO 7064 MOD 11-2 check character."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    y, m, d = int(s[6:10]), int(s[10:12]), int(s[12:14])
    if not (1900 <= y <= 2100 and 1 <= m <= 12 and 1 <= d <= 31):
        return False
    check = "10X98765432"[sum(int(c) * w for c, w in zip(s[:17], _ID_WEIGHTS)) % 11]
    return s[17].upper() == check


_CARD_SHAPE = re.compile(r"\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5}")


def valid_card(s: str) -> bool:
    """A payment card number: 13-19 digits, together or grouped as cards print them (4-4-4-4, 4-6-5), passing the
    Luhn check (numbers in tables, ids and counts separated by spaces are not cards)."""
    if not _CARD_SHAPE.fullmatch(s):
        return False
    digits = re.sub(r"[ -]", "", s)
    return 13 <= len(digits) <= 19 and digits.isdigit() and len(set(digits)) > 1 and _luhn(digits)


def personal_data(res: pa.Table) -> dict[int, str]:
    """Row index -> what was found, e.g. '1 e-mail address, 1 phone number'. Python runs on the candidates only.

    Not counted: values reserved for examples and fiction (:func:`reserved_email`, :func:`fictional_phone`),
    role mailboxes of organisations (info@, support@), hotlines named as such, numbers that fail their
    checksum, ISBNs, and key-like strings that are placeholders ("YOUR_API_KEY").
    """
    cols = {name: res.column(name).combine_chunks() for name in
            ("email_cands", "phone_cands", "id_cands", "card_cands", "key_cands")}
    any_cand = np.zeros(res.num_rows, dtype=bool)
    for col in cols.values():
        any_cand |= pc.fill_null(pc.greater(pc.list_value_length(col), 0), False).to_numpy(zero_copy_only=False)
    out: dict[int, str] = {}
    for i in np.flatnonzero(any_cand):
        i = int(i)
        fresh = lambda vals: list(dict.fromkeys(vals or ()))  # noqa: E731
        ids_ = [v for v in fresh(cols["id_cands"][i].as_py()) if valid_cn_id(v)]
        phones = []
        for ctx in cols["phone_cands"][i].as_py() or ():
            m = _PHONE_RE.search(ctx)
            if m and not _HOTLINE.search(ctx[: m.start()]) and not fictional_phone(m.group()):
                phones.append(m.group())
        found = [
            ("e-mail address", "e-mail addresses",
             [v for v in fresh(cols["email_cands"][i].as_py()) if not reserved_email(v)]),
            ("resident ID number", "resident ID numbers", ids_),
            ("phone number", "phone numbers", fresh(phones)),
            ("card number", "card numbers", [v for v in fresh(cols["card_cands"][i].as_py())
                                             if valid_card(v) and v not in ids_ and not re.sub(r"[ -]", "", v).startswith(("978", "979"))]),
            ("API key or secret", "API keys or secrets", [v for v in fresh(cols["key_cands"][i].as_py()) if real_key(v)]),
        ]
        kinds = [f"{len(v)} {one if len(v) == 1 else many}" for one, many, v in found if v]
        if kinds:
            out[i] = ", ".join(kinds)
    return out


_PHONE_RE = re.compile(PHONE)
# a number named as a hotline or service line is an organisation's, published for the public
_HOTLINE = re.compile(r"(?i)hotline|helpline|lifeline|crisis|toll[- ]free|customer service|热线|客服|服务电话|咨询电话|"
                      r"求助电话|举报电话|服务热线|报警|急救")
# Domains reserved for documentation (RFC 2606 / 6761) and ones people use as stand-ins.
_RESERVED_DOMAINS = re.compile(
    r"(?i)(?:^|\.)(?:example\.(?:com|org|net|edu)|[^.]+\.(?:example|test|invalid|localhost|local)|localhost|domain\.com|"
    r"email\.com|company\.com|(?:your|my|some|the)?(?:company|domain|website|site|business|email|mail|org)\.(?:com|org|net)|"
    r"test\.com|acme\.com|xxx+\.com|foo\.com|bar\.com|abc\.com|xyz\.com|mysite\.com|website\.com)$")
_ROLE_MAILBOXES = {"info", "support", "contact", "sales", "admin", "hello", "help", "service", "noreply", "no-reply", "team",
                   "hr", "jobs", "careers", "press", "media", "webmaster", "office", "marketing", "billing", "feedback",
                   "privacy", "security", "enquiries", "inquiries", "customerservice", "kefu", "service-desk"}
_STANDIN_LOCAL = re.compile(r"(?i)^(?:john\.?doe|jane\.?doe|j\.?doe|user(?:name)?\d*|your\.?name|name|someone|test\w*|"
                            r"foo|bar|xxx+|abc|me|you|email|example|sample|demo|firstname\.?lastname|first\.last)$")


def reserved_email(address: str) -> bool:
    """An address of a reserved or stand-in domain, a role mailbox, or a stand-in name (john.doe@...)."""
    local, _, domain = address.rpartition("@")
    return bool(_RESERVED_DOMAINS.search(domain)) or local.lower() in _ROLE_MAILBOXES or bool(_STANDIN_LOCAL.match(local))


def fictional_phone(number: str) -> bool:
    """555 numbers (the North American range for fiction), runs such as 1234567890, one repeated digit, or
    short service numbers (hotlines) that the phone pattern catches as parts of longer text."""
    digits = re.sub(r"\D", "", number)
    if (re.search(r"(?:^|\D)555[- .)]?\s?\d{4}\b|\(\d{3}\) ?555|\(555\)|^\+?1?[ -]?555\b", number)
            or re.fullmatch(r"1?\d{3}555\d{4}|1?555\d{7}", digits)):
        return True
    if len(set(digits)) <= 2:
        return True
    runs = "01234567890123456789"
    return digits in runs or digits in runs[::-1] or digits[-10:] in runs


def real_key(value: str) -> bool:
    """A key-like string with letters and digits mixed, not a stand-in ("YOUR_API_KEY", "sk-xxxx...")."""
    value = re.split(r"[:=]\s*['\"]", value)[-1].strip("'\"")
    tail = value.split("-", 1)[-1] if value.startswith(("sk-", "xox")) else value
    if re.search(r"(?i)your|xxxx|here|example|placeholder|dummy|insert|secret_key|api_key|token", tail):
        return False
    return bool(re.search(r"\d", tail) and re.search(r"[A-Za-z]", tail) and len(set(tail)) >= 10)
