// A bank's page, as a Node script: the published ncalayer-js-client 1.5.6, unchanged, against
// tokenrun agent. The Go test (cmd/tokenrun TestAgentNCALayerClient) starts the agent, plays
// the person over its --person json protocol, and checks every signature printed here with
// openssl. Each step prints one JSON line: {"step", "result"} or {"step", "error",
// "canceledByUser"}, with "ms".
//
// Environment: AGENT_URL (ws://127.0.0.1:PORT), ORIGIN (the page's origin), DOCS (a JSON list
// of three base64 documents), OTHER_ORIGIN (an origin the region does not allow).
'use strict';

const WebSocket = require('ws');

// A browser sends its page's Origin with every WebSocket handshake; Node's ws sends one only
// when asked. The client takes a global WebSocket when there is one (as in a browser), so
// this stands in for the browser's, and the library itself is not touched.
function browserWebSocket(origin) {
  return class extends WebSocket {
    constructor(url) {
      super(url, { origin });
    }
  };
}

global.WebSocket = browserWebSocket(process.env.ORIGIN);
const { NCALayerClient } = require('ncalayer-js-client');

const docs = JSON.parse(process.env.DOCS);

function print(step, value) {
  process.stdout.write(`${JSON.stringify({ step, ...value })}\n`);
}

// step runs one call and prints its outcome and how long the page waited for it (the
// person's answers come from the test at once, so this is the agent's own time).
async function step(name, fn) {
  const start = process.hrtime.bigint();
  const ms = () => Number(process.hrtime.bigint() - start) / 1e6;
  try {
    const result = await fn();
    print(name, { result, ms: ms() });
  } catch (err) {
    print(name, { error: String(err), canceledByUser: Boolean(err.canceledByUser), ms: ms() });
  }
}

(async () => {
  const client = new NCALayerClient(process.env.AGENT_URL);
  await step('connect', () => client.connect());
  await step('getActiveTokens', () => client.getActiveTokens());
  const C = NCALayerClient;
  const cms = (storages, data, params, signer) => () => client.basicsSignCMS(storages, data, params, signer, 'en');
  await step('attached', cms(C.basicsStorageKAZTOKEN, docs[0], C.basicsCMSParamsAttached, C.basicsSignerSignAny));
  await step('detached', cms(C.basicsStorageKAZTOKEN, docs[0], C.basicsCMSParamsDetached, C.basicsSignerAny));
  await step('three', cms(C.basicsStorageHardware, docs, C.basicsCMSParamsDetached, C.basicsSignerSignAny));
  await step('createCAdESFromBase64', () => client.createCAdESFromBase64('AKKaztokenStore', docs[1], 'SIGNATURE', false));
  await step('getKeyInfo', () => client.getKeyInfo('AKKaztokenStore'));
  await step('cancel', cms(C.basicsStorageKAZTOKEN, docs[2], C.basicsCMSParamsDetached, C.basicsSignerAny));
  await step('wrongPIN', cms(C.basicsStorageKAZTOKEN, docs[2], C.basicsCMSParamsDetached, C.basicsSignerAny));
  await step('pkcs12', cms(C.basicsStoragePKCS12, docs[2], C.basicsCMSParamsDetached, C.basicsSignerAny));
  await step('xml', () => client.basicsSignXML(C.basicsStorageKAZTOKEN, '<order/>', C.basicsXMLParams, C.basicsSignerAny, 'en'));
  client.wsConnection.close();

  // The same page served from another origin is refused at the handshake.
  global.WebSocket = browserWebSocket(process.env.OTHER_ORIGIN);
  delete require.cache[require.resolve('ncalayer-js-client')];
  const { NCALayerClient: Other } = require('ncalayer-js-client');
  const other = new Other(process.env.AGENT_URL);
  await step('otherOrigin', () => other.connect());
  process.exit(0);
})();
