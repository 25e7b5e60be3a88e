"""Claims: what model cards and the spec say a file is, checked against the file.

Claims files and quantization recipes are data (conformance/claims/,
conformance/recipes/); each claim becomes a test of the "claims" group, and the
reference profile's figures are the clause-tagged claims of the reference's
claims file: one mechanism for both.
"""
