#!/usr/bin/env node
'use strict';
// nodehello: a Chima plugin written for Node.js, on the chima-plugin library
// (sdk/node/chima-plugin). The host starts it through go-plugin with
// automatic mTLS, like any Go plugin, and it calls back into the host's Host
// service for its state, a lock, a durable job and posts.
//
// Commands:
//   nodehello <name>            replies "Hello from Node.js, <name>!"
//   nodecount <n>               streams n progress events, then "counted to n"
//   nodenote set <key> <value>  keeps a note in the plugin's KV state
//   nodenote get <key>          reads it back (it outlives plugin restarts)
//   nodelock take|release <name>  takes or releases a named lock
//   nodejob <text>              enqueues a durable nodejob.shout job, which
//                               posts its result to the room with Host.Post

const { serve, UserError } = require('chima-plugin');

const COUNT_MAX = 100;
const COUNT_STEP_MS = 100;
const JOB_KIND = 'nodejob.shout';
const NOTE_PREFIX = 'note/';

const plugin = {
  name: 'nodehello',
  version: '1.0.0',
  description: 'Says hello from a Node.js process, keeps notes, takes locks and runs a job.',
  commands: [
    {
      name: 'nodehello',
      usage: 'nodehello <name>',
      help: 'Greets someone by name, from Node.js.',
      args: [{ name: 'name', required: true, rest: true, help: 'who to greet' }],
      examples: ['nodehello world'],
      run: async (ctx) => ctx.reply(`Hello from Node.js, ${ctx.arg('name')}!`),
    },
    {
      name: 'nodecount',
      usage: 'nodecount <n>',
      help: 'Counts to n, streaming progress as it goes.',
      args: [{ name: 'n', type: 'int', required: true, help: `how far to count, 1 to ${COUNT_MAX}` }],
      examples: ['nodecount 5'],
      run: async (ctx) => {
        const n = Number.parseInt(ctx.arg('n'), 10);
        if (!(n >= 1 && n <= COUNT_MAX)) {
          throw new UserError(`n must be between 1 and ${COUNT_MAX}`, { detail: `got ${ctx.arg('n')}`, argument: 'n' });
        }
        for (let i = 1; i <= n; i++) {
          ctx.progress('count', `${i}/${n}`);
          if (i < n) await ctx.sleep(COUNT_STEP_MS);
        }
        ctx.reply(`counted to ${n}`);
      },
    },
    {
      name: 'nodenote',
      usage: 'nodenote set <key> <value> | nodenote get <key>',
      help: 'Keeps notes in the plugin\'s state on the host, which outlives the plugin.',
      args: [
        { name: 'action', type: 'enum', enum: ['set', 'get'], required: true, help: 'set or get' },
        { name: 'key', required: true, pattern: '[A-Za-z0-9_.-]{1,64}', help: 'the note\'s name' },
        { name: 'value', rest: true, help: 'what to note (set only)' },
      ],
      examples: ['nodenote set color blue', 'nodenote get color'],
      run: async (ctx) => {
        const key = ctx.arg('key');
        if (ctx.arg('action') === 'set') {
          const value = ctx.arg('value');
          if (value === '') throw new UserError('nodenote set needs a value', { argument: 'value' });
          await ctx.kvSet(NOTE_PREFIX + key, value);
          ctx.reply(`noted ${key}`);
          return;
        }
        const value = await ctx.kvGet(NOTE_PREFIX + key);
        if (value === null) throw new UserError(`no note named ${key}`, { argument: 'key' });
        ctx.reply(`${key} = ${value.toString('utf8')}`);
      },
    },
    {
      name: 'nodelock',
      usage: 'nodelock take|release <name>',
      help: 'Takes or releases a named lock (held for an hour at most).',
      args: [
        { name: 'action', type: 'enum', enum: ['take', 'release'], required: true, help: 'take or release' },
        { name: 'name', required: true, pattern: '[A-Za-z0-9_.-]{1,64}', help: 'the lock\'s name' },
      ],
      examples: ['nodelock take door', 'nodelock release door'],
      run: async (ctx) => {
        const name = ctx.arg('name');
        const lock = 'nodelock/' + name;
        if (ctx.arg('action') === 'take') {
          const { acquired, holder } = await ctx.lock(lock, { reason: 'nodelock take', ttlSeconds: 3600 });
          if (!acquired) throw new UserError(`${name} is held by ${holder.owner}`);
          ctx.reply(`locked ${name} for ${holder.owner}`);
          return;
        }
        const { released, holder } = await ctx.unlock(lock);
        if (!released) {
          throw new UserError(holder ? `${name} is held by ${holder.owner}` : `${name} is not locked`);
        }
        ctx.reply(`released ${name}`);
      },
    },
    {
      name: 'nodejob',
      usage: 'nodejob <text>',
      help: `Enqueues a durable ${JOB_KIND} job that shouts text back into the room.`,
      args: [{ name: 'text', required: true, rest: true, help: 'what to shout' }],
      examples: ['nodejob hello'],
      run: async (ctx) => {
        const text = ctx.arg('text');
        const id = await ctx.enqueue(JOB_KIND, JSON.stringify({ text, by: ctx.lockOwner() }), { title: `shout "${text}"` });
        ctx.reply(`queued job #${id}`);
      },
    },
  ],
  jobs: [
    {
      kind: JOB_KIND,
      run: async (ctx) => {
        const { text, by } = JSON.parse(ctx.job.payload.toString('utf8'));
        const notes = await ctx.host.kvList({ prefix: NOTE_PREFIX });
        await ctx.post(`job #${ctx.job.jobId}: ${String(text).toUpperCase()}! (for ${by}; ${notes.keys.length} notes kept)`);
      },
    },
  ],
};

serve(plugin);
