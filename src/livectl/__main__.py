from livectl.cli import main

main()
