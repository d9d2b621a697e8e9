import t from 'tap'
import { Errors } from '../../src/errors.js'
import { encodeGrpcMessage, grpcErrorFields, grpcStatusOf, isGrpcRequest } from '../../src/proxy/grpc-reply.js'

t.test('isGrpcRequest: application/grpc and its +format and parameters, not gRPC-Web or look-alikes', async (t) => {
  for (const ct of ['application/grpc', 'application/grpc+proto', 'Application/GRPC+json', 'application/grpc; charset=x']) t.ok(isGrpcRequest(ct), ct)
  for (const ct of [undefined, '', 'application/grpc-web', 'application/grpc-web+proto', 'application/grpcx', 'text/plain', 'application/json']) {
    t.notOk(isGrpcRequest(ct), String(ct))
  }
})

t.test('grpcStatusOf: gRPC\'s HTTP mapping, refined by our error', async (t) => {
  t.equal(grpcStatusOf(Errors.BAD_REQUEST), 13, '400 → INTERNAL')
  t.equal(grpcStatusOf(Errors.UNAUTHORIZED), 16, '401 → UNAUTHENTICATED')
  t.equal(grpcStatusOf(Errors.FORBIDDEN), 7, '403 → PERMISSION_DENIED')
  t.equal(grpcStatusOf(Errors.NO_ROUTE), 12, '404 → UNIMPLEMENTED')
  t.equal(grpcStatusOf(Errors.NO_HEALTHY_SERVER), 14, '503 → UNAVAILABLE')
  t.equal(grpcStatusOf(Errors.UPSTREAM_CONNECT), 14, '502 → UNAVAILABLE')
  t.equal(grpcStatusOf(Errors.UPSTREAM_TIMEOUT), 4, 'a timeout → DEADLINE_EXCEEDED')
  t.equal(grpcStatusOf(Errors.QUEUE_TIMEOUT), 4)
  t.equal(grpcStatusOf(Errors.RATE_LIMITED), 8, '429 → RESOURCE_EXHAUSTED')
  t.equal(grpcStatusOf(Errors.INTERNAL), 2, '500 → UNKNOWN')
})

t.test('encodeGrpcMessage: percent-encoded UTF-8, printable ASCII as is', async (t) => {
  t.equal(encodeGrpcMessage('no server: 100% busy'), 'no server: 100%25 busy')
  t.equal(encodeGrpcMessage('é\n'), '%C3%A9%0A')
  t.same(grpcErrorFields(Errors.NO_HEALTHY_SERVER), ['content-type', 'application/grpc', 'grpc-status', '14',
    'grpc-message', 'LB_ERR_NO_HEALTHY_SERVER: no healthy server for this backend shard', 'x-switchyard-error', 'LB_ERR_NO_HEALTHY_SERVER'])
})
