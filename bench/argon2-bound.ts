import os from 'node:os';
import argon2 from 'argon2';
import { loadConfig } from '../src/config/config.ts';
import { load } from './measure.ts';
import { PASSWORD } from './setup.ts';

// The physical bound of a sign-in: argon2id verifications alone, at the server's parameters and
// hash concurrency, on the CPUs this process may use (the bench starts it with the server's), in
// the steady state. Prints one JSON summary, with the CPU milliseconds of one verification.

const { argon2: params, hashConcurrency: concurrency } = loadConfig({});
const hash = await argon2.hash(PASSWORD, { type: argon2.argon2id, ...params });
// Unmeasured first: the hashing threads start and their memory is faulted in (about a quarter more
// CPU per verification at first), as it long has been in a server that has signed people in.
await load({ concurrency, count: concurrency * 10 }, () => argon2.verify(hash, PASSWORD));
const cpu = process.cpuUsage();
const summary = await load({ concurrency, count: Math.max(50, os.availableParallelism() * 40) }, () => argon2.verify(hash, PASSWORD));
// CPU of the whole process (its hashing threads too) per verification: what one sign-in's hash costs.
const { user, system } = process.cpuUsage(cpu);
const cpuMsPerVerify = Math.round(((user + system) / 1000 / summary.count) * 100) / 100;
process.stdout.write(`${JSON.stringify({ ...summary, concurrency, cpuMsPerVerify })}\n`);
