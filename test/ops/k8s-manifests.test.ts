import fs from 'node:fs';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * deploy/k8s against the Kubernetes API's own JSON schemas (kubernetes-models bundles them from the
 * OpenAPI spec and validates with ajv): no cluster runs here, so this is what CI can prove.
 */
const K8S_DIR = path.join(__dirname, '../../deploy/k8s');

interface Manifest {
  file: string;
  apiVersion: string;
  kind: string;
  metadata?: { name?: string };
  spec?: Record<string, unknown>;
  [key: string]: unknown;
}

function manifests(): Manifest[] {
  return fs
    .readdirSync(K8S_DIR)
    .filter((file) => file.endsWith('.yaml') && file !== 'kustomization.yaml')
    .flatMap((file) =>
      parseAllDocuments(fs.readFileSync(path.join(K8S_DIR, file), 'utf8')).map((document) => {
        expect(document.errors).toEqual([]);
        return { ...(document.toJS() as Omit<Manifest, 'file'>), file } as Manifest;
      }),
    );
}

function validate(manifest: Manifest): void {
  const { file: _file, ...object } = manifest;
  const modulePath = `kubernetes-models/${manifest.apiVersion}`;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const models = require(modulePath) as Record<string, new (value: unknown) => { validate(): void }>;
  const Model = models[manifest.kind];
  if (!Model) throw new Error(`${manifest.file}: no schema for ${manifest.apiVersion} ${manifest.kind}`);
  new Model(object).validate();
}

describe('deploy/k8s', () => {
  const all = manifests();

  test('has the Deployment, Service, ConfigMap, HPA, Secret example and Redis', () => {
    expect(all.map((manifest) => `${manifest.kind}/${manifest.metadata?.name}`).sort()).toEqual([
      'ConfigMap/troupe-config',
      'Deployment/troupe',
      'Deployment/troupe-redis',
      'HorizontalPodAutoscaler/troupe',
      'Secret/troupe-secrets',
      'Service/troupe',
      'Service/troupe-redis',
    ]);
  });

  test.each(
    manifests().map((manifest) => [`${manifest.file} ${manifest.kind}/${manifest.metadata?.name}`, manifest]),
  )('%s is valid against the Kubernetes schema', (_name, manifest) => {
    expect(() => validate(manifest as Manifest)).not.toThrow();
  });

  test('the validator does reject a wrong manifest (a probe port as an object)', () => {
    const deployment = structuredClone(all.find((manifest) => manifest.metadata?.name === 'troupe')!);
    const container = (deployment.spec as any).template.spec.containers[0]; // eslint-disable-line @typescript-eslint/no-explicit-any
    container.readinessProbe.httpGet.port = { name: 'http' };
    expect(() => validate(deployment)).toThrow();
  });

  test('readiness is /api/health, liveness /api/health/live, the pod runs as non-root', () => {
    const deployment = all.find(
      (manifest) => manifest.kind === 'Deployment' && manifest.metadata?.name === 'troupe',
    )!;
    const pod = (deployment.spec as any).template.spec; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(pod.containers[0].readinessProbe.httpGet.path).toBe('/api/health');
    expect(pod.containers[0].livenessProbe.httpGet.path).toBe('/api/health/live');
    expect(pod.securityContext.runAsNonRoot).toBe(true);
  });

  test('every ConfigMap key is a Troupe setting, and kustomization lists files that exist', () => {
    const example = fs.readFileSync(path.join(__dirname, '../../.env.example'), 'utf8');
    const configMap = all.find((manifest) => manifest.kind === 'ConfigMap')!;
    for (const key of Object.keys(configMap.data as Record<string, string>)) {
      expect(example).toMatch(new RegExp(`^${key}=`, 'm'));
    }
    const kustomization = parseAllDocuments(
      fs.readFileSync(path.join(K8S_DIR, 'kustomization.yaml'), 'utf8'),
    )[0].toJS();
    for (const file of kustomization.resources) expect(fs.existsSync(path.join(K8S_DIR, file))).toBe(true);
  });
});
