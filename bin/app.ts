/** CDK entry point (cdk.json: "app": "npx tsx bin/app.ts"). Everything is in lib/. */
import { buildApp } from '../lib/app';

buildApp().app.synth();
