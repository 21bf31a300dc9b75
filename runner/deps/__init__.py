"""Dependency stage: scan imports, map them in the user's interpreter, pin them."""
