// The aedes broker the tests start:
//   node aedes_server.mjs TCP_PORT [WS_PORT [WS_PATH [CERT_FILE KEY_FILE]]]
// aedes is a library; this is the smallest server around it: MQTT on TCP, and MQTT over
// WebSockets (subprotocol `mqtt`, binary frames) on a second port when one is given, over TLS
// (wss) when a certificate and key are given. Sessions
// live in memory (aedes' default persistence), so they do not outlive this process. Prints
// "ready" once both listeners are up; stops on SIGTERM.
import { createServer } from 'node:net'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { Aedes } from 'aedes'
import { WebSocketServer, createWebSocketStream } from 'ws'

const [tcpPort, wsPort, wsPath = '/mqtt', certFile, keyFile] = process.argv.slice(2)
const broker = await Aedes.createBroker()
broker.on('clientError', (client, error) => console.error(`client ${client.id}: ${error.message}`))

function listen (server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(Number(port), '127.0.0.1', resolve)
  })
}

const servers = [createServer(broker.handle)]
await listen(servers[0], tcpPort)
if (wsPort) {
  const http = certFile
    ? createHttpsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) })
    : createHttpServer()
  const wss = new WebSocketServer({
    server: http,
    path: wsPath,
    handleProtocols: (protocols) => (protocols.has('mqtt') ? 'mqtt' : false)
  })
  wss.on('connection', (socket, request) => broker.handle(createWebSocketStream(socket), request))
  servers.push(http)
  await listen(http, wsPort)
}
console.log('ready')

process.on('SIGTERM', () => {
  for (const server of servers) server.close()
  broker.close(() => process.exit(0))
})
