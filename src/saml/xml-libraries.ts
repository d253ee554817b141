import type * as Xmldom from '@xmldom/xmldom';
import type * as XmlCrypto from 'xml-crypto';
import type * as XmlEncryption from 'xml-encryption';
import { lazyModule } from '../shared/lazy-module.ts';

/** SAML's XML stack, loaded on the first SAML message or metadata (or by the warm-up), not at start. */
export const xmldom = lazyModule((require) => require('@xmldom/xmldom') as typeof Xmldom);
export const xmlCrypto = lazyModule((require) => require('xml-crypto') as typeof XmlCrypto);
export const xmlEncryption = lazyModule((require) => require('xml-encryption') as typeof XmlEncryption);
