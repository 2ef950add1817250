// A reference Yjs client for the document tests: the y-websocket provider
// and yjs exactly as an editor in a browser would use them (Debian's
// node-yjs / node-y-websocket / node-ws; NODE_PATH=/usr/share/nodejs).
//
// Usage: node ydoc-client.cjs <ws://host/api/sessions/ID> <token> [doc|notes]
// Reads one JSON command per line on stdin, writes one JSON line per event
// or reply on stdout:
//   {"op":"insert","index":0,"text":"a"}      edit the Y.Text "code"
//   {"op":"delete","index":0,"length":1}
//   {"op":"edits","count":40,"seed":7,"delayMs":5,"tag":"A"}
//        interleaved inserts and deletes near the start, then {"event":"edited"}
//   {"op":"text"}                             -> {"text": "..."}
//   {"op":"awareness","state":{...}}          set this client's awareness state
//   {"op":"peers"}                            -> {"peers": {clientId: state}}
//   {"op":"close"}                            disconnect and exit
// Events: {"event":"status","status":...}, {"event":"synced"},
//         {"event":"closed","code":n,"reason":"..."}, {"event":"change"}.
'use strict'
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WebSocket = require('ws')
const readline = require('readline')

const [base, token, room = 'doc'] = process.argv.slice(2)
const doc = new Y.Doc()
const text = doc.getText('code')
const provider = new WebsocketProvider(base, room, doc, {
  WebSocketPolyfill: WebSocket,
  params: { token },
  disableBc: true,
  maxBackoffTime: 500
})

const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
provider.on('status', ({ status }) => out({ event: 'status', status }))
provider.on('synced', (synced) => { if (synced) out({ event: 'synced', clientId: doc.clientID }) })
provider.on('connection-close', (event) => out({ event: 'closed', code: event ? event.code : null, reason: event ? String(event.reason || '') : '' }))
provider.awareness.on('change', () => out({ event: 'awareness' }))
text.observe(() => out({ event: 'change' }))

// A small deterministic generator, so a failing run can be replayed.
function rng (seed) {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 4294967296 }
}

async function edits ({ count, seed, delayMs, tag }) {
  const random = rng(seed)
  for (let i = 0; i < count; i++) {
    const len = text.length
    if (len > 2 && random() < 0.3) {
      // Delete at the front, where the other client inserts too.
      text.delete(Math.floor(random() * Math.min(len, 3)), 1)
    } else {
      text.insert(Math.floor(random() * Math.min(len + 1, 2)), `${tag}${i % 10}`)
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs))
  }
  out({ event: 'edited' })
}

const lines = readline.createInterface({ input: process.stdin })
lines.on('line', async (line) => {
  const cmd = JSON.parse(line)
  switch (cmd.op) {
    case 'insert': text.insert(cmd.index, cmd.text); out({ ok: true }); break
    case 'delete': text.delete(cmd.index, cmd.length); out({ ok: true }); break
    case 'edits': await edits(cmd); break
    case 'text': out({ text: text.toString() }); break
    case 'awareness': provider.awareness.setLocalState(cmd.state); out({ ok: true }); break
    case 'peers': {
      const peers = {}
      for (const [id, state] of provider.awareness.getStates()) {
        if (id !== doc.clientID) peers[id] = state
      }
      out({ peers })
      break
    }
    case 'close': provider.destroy(); out({ ok: true }); setTimeout(() => process.exit(0), 50); break
    default: out({ error: `unknown op ${cmd.op}` })
  }
})
lines.on('close', () => { provider.destroy(); process.exit(0) })
