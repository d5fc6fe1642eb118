"""Reports for people: the HTML report of scored images (``arniqa report``)."""
