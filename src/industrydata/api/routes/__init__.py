"""One router per resource of the industryData hub."""
