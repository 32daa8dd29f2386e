"""The sample market's security codes: ISINs as KRX forms them (shared by the shares and the ETPs)."""

from __future__ import annotations


def isin_of(ticker: str, prefix: str = "KR7") -> str:
    """The ISIN of a Korean common share: KR7 + ticker + 00 + the ISIN (Luhn) check digit (an ETN's
    starts with ``KRG``: ``prefix``)."""
    body = f"{prefix}{ticker}00"
    digits = "".join(str(int(c, 36)) for c in body)
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:
            n *= 2
            n = n - 9 if n > 9 else n
        total += n
    return body + str((10 - total % 10) % 10)
