"""The small OpenDART client: every request through the installation's gate, every status typed.

Neither OpenDartReader (no timeout, prints errors and returns empty frames) nor dart-fss (its own
sleep per process, no shared budget) can be paced across workers or pointed at the fake, so
krxflow sends its few kinds of request itself, with ``requests``:

* each request takes its turn at :class:`~krxflow.dart.gate.DartGate` and is classified before
  the next one may go: 000 data, 013 empty (``None``), 010/011/012/901 :class:`DartKeyError`,
  020 :class:`DartLimitError` (the circuit opens until the next KST day), 800
  :class:`DartMaintenanceError`, 100/101/021 :class:`DartRequestError`, anything else
  :class:`DartUnknownError`; HTTP other than 200 :class:`DartHttpError`;
* :meth:`DartClient.filings` reads every page of a day (page_count 100) and checks that the pages
  add up to the first page's ``total_count``;
* :meth:`DartClient.multi_accounts` asks ``fnlttMultiAcnt`` for up to 100 companies at once.

:func:`dart_client` gives the configured client — or, in sample mode, one talking to a local fake
OpenDART over the sample market for as long as the ``with`` block lasts.
"""

from __future__ import annotations

import contextlib
import io
import logging
import zipfile
from typing import Iterator
from xml.etree import ElementTree

import pandas as pd
import requests

from krxflow.dart import errors
from krxflow.dart.config import DartConfig, load_config
from krxflow.dart.gate import DartGate
from krxflow.market_time import kst_date

log = logging.getLogger(__name__)

PAGE_COUNT = 100
#: fnlttMultiAcnt's most companies per request (more: status 021).
MULTI_LIMIT = 100
CORP_COLUMNS = ["corp_code", "corp_name", "corp_eng_name", "stock_code", "modify_date"]
FILING_FIELDS = ["corp_code", "corp_name", "stock_code", "corp_cls", "report_nm", "rcept_no", "flr_nm", "rcept_dt", "rm"]


class DartClient:
    """OpenDART through the gate. ``requests_sent`` counts this client's requests."""

    def __init__(self, config: DartConfig, gate: DartGate | None = None, session: requests.Session | None = None):
        if config.sample:
            raise ValueError("DartClient needs a key; use dart_client() for the sample mode")
        self.config = config
        self.gate = gate or DartGate()
        self.session = session or requests.Session()
        self.requests_sent = 0

    # ------------------------------------------------------------------ one request
    def _send(self, api: str, params: dict) -> requests.Response:
        url = f"{self.config.base_url}/api/{api}"
        with self.gate.turn():
            self.requests_sent += 1
            try:
                response = self.session.get(url, params={"crtfc_key": self.config.api_key, **params},
                                            timeout=self.config.timeout, allow_redirects=False)
            except requests.RequestException as exc:
                raise errors.DartHttpError(f"OpenDART {api}: {type(exc).__name__}: {exc}") from exc
            if response.status_code != 200:
                raise errors.DartHttpError(f"OpenDART {api} answered HTTP {response.status_code}")
            status, message = _status_of(api, response)
            self._check(api, status, message)
            return response

    def _check(self, api: str, status: str | None, message: str) -> None:
        if status in (None, "000", "013"):
            return
        if status in errors.KEY_STATUSES:
            raise errors.DartKeyError(
                f"OpenDART refused the key of the dart_default Connection: it {errors.KEY_STATUSES[status]} "
                f"(status {status}: {message}). Not retried; fix the Connection's password.", status)
        if status == "020":
            reason = f"status 020 on {api}: {message}"
            self.gate.open_circuit(reason)
            raise errors.DartLimitError(
                f"OpenDART's daily request limit of this key is reached ({reason}); the DART circuit is open "
                f"until 00:00 KST (redis-cli DEL {self.gate.circuit_key()} to close it earlier). Not retried.",
                status)
        if status == "800":
            raise errors.DartMaintenanceError(f"OpenDART is in maintenance (status 800: {message})", status)
        if status in ("100", "101", "021"):
            raise errors.DartRequestError(f"OpenDART refused the {api} request (status {status}: {message})", status)
        raise errors.DartUnknownError(f"OpenDART {api} answered status {status}: {message}", status)

    def get_json(self, api: str, **params) -> dict | None:
        """One JSON request: the answer with status 000, or None for 013 (no data)."""
        response = self._send(api, params)
        body = response.json()
        return None if body["status"] == "013" else body

    # ------------------------------------------------------------------ services
    def corp_codes(self) -> pd.DataFrame:
        """corpCode.xml: every company, ``stock_code`` None when unlisted, ``modify_date`` a date."""
        response = self._send("corpCode.xml", {})
        try:
            with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
                data = archive.read("CORPCODE.xml")
        except (zipfile.BadZipFile, KeyError) as exc:
            raise errors.DartBadAnswerError(f"corpCode.xml is not a ZIP holding CORPCODE.xml: {exc}") from exc
        root = ElementTree.fromstring(data)
        rows = [{f: (item.findtext(f) or "") for f in CORP_COLUMNS} for item in root.iter("list")]
        frame = pd.DataFrame(rows, columns=CORP_COLUMNS)
        for column in ("stock_code", "corp_eng_name"):  # OpenDART writes an unlisted company's code as " "
            frame[column] = [value.strip() or None for value in frame[column]]
        frame["modify_date"] = pd.to_datetime(frame["modify_date"], format="%Y%m%d", errors="coerce")
        return frame

    def filings(self, day, corp_cls: str | None = None) -> list[dict]:
        """Every filing received on ``day`` (of class ``corp_cls``), all pages; [] when none (013)."""
        day = kst_date(day)
        query = {"bgn_de": f"{day:%Y%m%d}", "end_de": f"{day:%Y%m%d}", "page_count": PAGE_COUNT}
        if corp_cls:
            query["corp_cls"] = corp_cls
        first = self.get_json("list.json", page_no=1, **query)
        if first is None:
            return []
        rows, total = list(first["list"]), int(first["total_count"])
        for page in range(2, int(first["total_page"]) + 1):
            answer = self.get_json("list.json", page_no=page, **query)
            if answer is None or int(answer["total_count"]) != total:
                raise errors.DartChangedWhilePagingError(
                    f"OpenDART's filings of {day} ({corp_cls or 'all'}) changed while paging "
                    f"(total {total}, then {answer and answer['total_count']}); nothing written, retry.")
            rows.extend(answer["list"])
        if len({r["rcept_no"] for r in rows}) != total:
            raise errors.DartChangedWhilePagingError(
                f"OpenDART's pages of {day} ({corp_cls or 'all'}) hold {len(rows)} rows, "
                f"{len({r['rcept_no'] for r in rows})} distinct, for a total of {total}; nothing written, retry.")
        return rows

    def multi_accounts(self, corp_codes: list[str], bsns_year: int | str, reprt_code: str) -> list[dict]:
        """fnlttMultiAcnt: the major accounts (CFS and OFS) of up to 100 companies' report of a year;
        [] when none has filed it (013)."""
        if not 1 <= len(corp_codes) <= MULTI_LIMIT:
            raise ValueError(f"fnlttMultiAcnt takes 1-{MULTI_LIMIT} companies, got {len(corp_codes)}")
        answer = self.get_json("fnlttMultiAcnt.json", corp_code=",".join(corp_codes), bsns_year=str(bsns_year),
                               reprt_code=reprt_code)
        return [] if answer is None else list(answer["list"])

    def events(self, api: str, corp_code: str, first, last) -> list[dict]:
        """A DS005 material-event service (``piicDecsn``, ``fricDecsn``, ``crDecsn`` …) of one company
        for receipt dates ``first``..``last``; [] when none (013)."""
        answer = self.get_json(f"{api}.json", corp_code=corp_code, bgn_de=f"{kst_date(first):%Y%m%d}",
                               end_de=f"{kst_date(last):%Y%m%d}")
        return [] if answer is None else list(answer["list"])


def _status_of(api: str, response: requests.Response) -> tuple[str | None, str]:
    """OpenDART's status and message of an answer (a ZIP answer has none: None)."""
    body = response.content
    if api.endswith(".xml"):
        if body[:2] == b"PK":
            return None, ""
        try:
            root = ElementTree.fromstring(body)
        except ElementTree.ParseError as exc:
            raise errors.DartBadAnswerError(f"OpenDART {api} answered neither a ZIP nor XML: {body[:80]!r}") from exc
        return root.findtext("status"), root.findtext("message") or ""
    try:
        answer = response.json()
        return str(answer["status"]), str(answer.get("message", ""))
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.DartBadAnswerError(f"OpenDART {api} answered no JSON status: {body[:80]!r}") from exc


@contextlib.contextmanager
def dart_client(config: DartConfig | None = None, gate: DartGate | None = None) -> Iterator[DartClient]:
    """The configured client; in sample mode one talking to a local fake OpenDART (the sample market)."""
    config = config or load_config()
    if not config.sample:
        yield DartClient(config, gate)
        return
    from krxflow.sample.dart_server import DEMO_KEY, FakeDart, FakeDartThread

    log.info("OpenDART sample mode: a local fake over the sample market")
    with FakeDartThread(FakeDart()) as server:
        yield DartClient(DartConfig(api_key=DEMO_KEY, base_url=server.url), gate)
