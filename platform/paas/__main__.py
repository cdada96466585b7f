"""`python -m paas ...`: the same command as `paas`."""

from paas.main import main

main()
