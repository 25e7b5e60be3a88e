"""What a certification run leaves behind: certificate, terminal summary, Allure, xdist merge.

`certificate` builds and writes the certificate JSON, `terminal` the facts
header and the clause table, `allure_report` enriches allure-pytest's results
(registered only under --alluredir), `xdist_merge` carries each xdist
worker's findings to the controller.

May import everything below the pytest hooks: `pytest_dfqs.session`,
`pytest_dfqs.model`, `pytest_dfqs.runtime`, `pytest_dfqs.modelfile`,
`pytest_dfqs.verdict`, `pytest_dfqs.catalogue`. Not the clauses' internals,
not the hooks.
"""
