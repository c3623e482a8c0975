"""A desk of many accounts: one process per account, laid out, watched and read together.

`layout` lays out one account's directory (`p2pbot desk init`), `overview` reads every
instance's /api/status into one table (`p2pbot desk status`, the desk page).
"""
