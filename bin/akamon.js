#!/usr/bin/env node
// The akamon operator CLI. Node 24 runs the TypeScript sources directly (type stripping).
import '../src/cli/main.ts';
