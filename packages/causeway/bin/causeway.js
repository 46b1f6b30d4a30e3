#!/usr/bin/env node
// Committed executable (tsc does not keep file modes): `npx causeway` and npm's bin links use it.
import '../dist/cli.js'
