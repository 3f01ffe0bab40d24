"""The circulating currencies of ISO 4217 and their minor units (decimal places).

Funds (such as BOV or USN), precious metals, SDRs and the test code XTS are not money a
customer pays with and are refused, as are withdrawn codes (HRK, BGN, SLL, VEF, ZWL...).
"""

from __future__ import annotations

__all__ = ["MINOR_UNITS", "format_amount", "is_currency"]

_BY_EXPONENT = {
    0: "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF",
    3: "BHD IQD JOD KWD LYD OMR TND",
    2: (
        "AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BMD BND BOB BRL BSD BTN BWP BYN "
        "BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
        "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD "
        "KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN "
        "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG "
        "SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH "
        "USD UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
    ),
}

# Code -> how many decimal places its minor unit has: priceCents 1000 is 10.00 USD but
# 1000 JPY, and 1.000 BHD.
MINOR_UNITS: dict[str, int] = {
    code: exponent for exponent, codes in _BY_EXPONENT.items() for code in codes.split()
}


def is_currency(code: str) -> bool:
    """Whether ``code`` (upper case) is a circulating ISO 4217 currency."""
    return code in MINOR_UNITS


def format_amount(minor: int, currency: str) -> str:
    """``2900, "USD"`` -> ``"29.00 USD"``; ``1000, "JPY"`` -> ``"1000 JPY"``."""
    exponent = MINOR_UNITS.get(currency, 2)
    sign, minor = ("-", -minor) if minor < 0 else ("", minor)
    if exponent == 0:
        return f"{sign}{minor} {currency}"
    whole, part = divmod(minor, 10**exponent)
    return f"{sign}{whole}.{part:0{exponent}d} {currency}"
