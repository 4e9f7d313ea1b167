"""industrydata: the Microsoft Graph industryData data-share outgoing flow, as open software."""

__version__ = "0.1.0"
