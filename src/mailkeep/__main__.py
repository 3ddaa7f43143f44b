from mailkeep.cli import main

main()
